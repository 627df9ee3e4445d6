#if canImport(Glibc)
    import Glibc
#endif

/// The real-time clock, for send timestamps and LWW stamps. Only the shell reads it.
enum WallClock {
    /// The test-only environment variable that shifts this clock: whole seconds,
    /// signed (`30`, `-30`). Read once, at the first reading of the clock, and never
    /// documented as a setting: it exists so `tools/faults lww-skew` can run one
    /// agent with a skewed clock beside others on one host, without touching the
    /// host's clock or preloading a library. Anything but an integer of at most a
    /// day is ignored.
    static let testOffsetVariable = "CHORUS_TEST_CLOCK_OFFSET"

    /// The offset in nanoseconds (0 unless the test variable is set).
    static let offsetNanoseconds: Int64 = {
        guard let raw = getenv(testOffsetVariable), let seconds = Int64(String(cString: raw)),
            abs(seconds) <= 86_400
        else { return 0 }
        return seconds * 1_000_000_000
    }()

    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let real = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        return UInt64(max(0, real + offsetNanoseconds))
    }
}
