import Foundation

/// libFuzzer driver (tools/fuzz). SwiftPM gives an executable its own `main`, so this
/// one hands control to libFuzzer's `LLVMFuzzerRunDriver` with the command line; the
/// target is named by `CHORUS_FUZZ_TARGET`, and a broken invariant traps so libFuzzer
/// keeps the input as a crasher.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

let name = ProcessInfo.processInfo.environment["CHORUS_FUZZ_TARGET"] ?? ""
guard let selected = FuzzTargets.named(name) else {
    fatalError("CHORUS_FUZZ_TARGET must be one of: \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
}
nonisolated(unsafe) var current = selected

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(
    runDriver(&argc, &argv) { data, count in
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
        if let problem = current.run(bytes) { fatalError(problem) }
        return 0
    })
