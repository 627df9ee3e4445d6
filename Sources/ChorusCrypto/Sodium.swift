import CSodium

/// The one place libsodium is initialised.
///
/// libsodium asks for `sodium_init()` before any other call: it picks the fastest
/// implementations for this CPU and seeds the random number generator. Calling it more
/// than once is harmless but wasteful, so the result lives in a `static let`, which Swift
/// initialises lazily, exactly once, under `swift_once` — thread-safe without a lock of
/// our own.
///
/// A failure is never a trap: the initialisers that need libsodium (``ClusterKey``'s)
/// throw ``SodiumUnavailableError`` instead. Everything else in this module takes a
/// ``ClusterKey`` or ``Keyring`` as input, and holding one proves initialisation
/// succeeded.
public enum Sodium {
    /// `sodium_init()`'s return value: 0 on success, 1 if already initialised, -1 on
    /// failure.
    private static let initResult: Int32 = sodium_init()

    /// Whether libsodium initialised successfully (triggers initialisation on first use).
    public static var isAvailable: Bool { initResult >= 0 }

    /// Initialises libsodium if nobody has yet, and throws if that failed.
    public static func ensureInitialised() throws(SodiumUnavailableError) {
        guard isAvailable else { throw SodiumUnavailableError(code: initResult) }
    }
}

/// `sodium_init()` failed, so no key can be made and nothing can be sealed.
public struct SodiumUnavailableError: Error, Equatable, CustomStringConvertible {
    /// What `sodium_init()` returned.
    public let code: Int32

    public var description: String {
        "libsodium failed to initialise (sodium_init() returned \(code))"
    }
}
