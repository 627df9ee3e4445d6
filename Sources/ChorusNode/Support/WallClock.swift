#if canImport(Glibc)
    import Glibc
#endif

/// The real-time clock, for send timestamps. Only the shell reads it.
enum WallClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
