import ChorusCore

/// Seeded, deterministic input mutation for the fuzz tests: the same seed gives the
/// same inputs on every machine, so a failure names an input that can be replayed.
///
/// The mutations aim at what breaks binary decoders: bit flips, truncation, length
/// fields inflated to huge or off-by-one values, spliced halves of two valid
/// encodings, duplicated and deleted ranges, and pure random bytes.
struct FuzzMutator {
    /// The simulator's SplitMix64: tiny, fast, and good enough to pick mutations.
    private var random: SeededRandom

    init(seed: UInt64) {
        random = SeededRandom(seed: seed)
    }

    mutating func next() -> UInt64 { random.next() }

    /// A number in `0..<bound` (`bound` > 0).
    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    mutating func randomBytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    /// One to four stacked mutations of `input`, another corpus entry for splicing.
    mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            bytes = mutateOnce(bytes, corpus: corpus)
        }
        return bytes
    }

    private static let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]

    private mutating func mutateOnce(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        if bytes.isEmpty { return randomBytes(below(64)) }
        switch below(10) {
        case 0:  // flip one bit
            let index = below(bytes.count)
            bytes[index] ^= 1 << UInt8(below(8))
        case 1:  // set a byte to an edge value
            bytes[below(bytes.count)] = Self.interesting[below(Self.interesting.count)]
        case 2:  // truncate
            bytes.removeLast(below(bytes.count) + 1)
        case 3:  // inflate a 16- or 32-bit big-endian length field: huge, or one more/less
            let width = below(2) == 0 ? 2 : 4
            guard bytes.count >= width else { return bytes }
            let at = below(bytes.count - width + 1)
            let current = bytes[at..<at + width].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let choices: [UInt64] = [current &+ 1, current &- 1, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000, 0xFFFF, 0]
            let value = choices[below(choices.count)]
            for offset in 0..<width {
                bytes[at + offset] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - offset)))
            }
        case 4:  // splice: a prefix of this input, a suffix of another
            let other = corpus.isEmpty ? input : corpus[below(corpus.count)]
            let cut = below(bytes.count + 1)
            let otherCut = other.isEmpty ? 0 : below(other.count + 1)
            bytes = Array(bytes[..<cut]) + Array(other[otherCut...])
        case 5:  // insert random bytes
            bytes.insert(contentsOf: randomBytes(below(16) + 1), at: below(bytes.count + 1))
        case 6:  // delete a range
            let start = below(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + below(16) + 1))
        case 7:  // duplicate a range
            let start = below(bytes.count)
            let range = start..<min(bytes.count, start + below(32) + 1)
            bytes.insert(contentsOf: bytes[range], at: below(bytes.count + 1))
        case 8:  // overwrite a run with random bytes
            let start = below(bytes.count)
            for index in start..<min(bytes.count, start + below(8) + 1) {
                bytes[index] = UInt8(truncatingIfNeeded: next())
            }
        default:  // pure random bytes
            bytes = randomBytes(below(256))
        }
        return bytes
    }
}
