/// A report as aligned `key  value` lines, for `chorus sim`'s default output.
extension SimReport {
    public var summaryLines: [String] {
        func seconds(_ value: Double?) -> String {
            guard let value else { return "-" }
            return format(value, digits: 2) + " s"
        }
        func summary(_ p: Percentiles) -> String {
            p.count == 0
                ? "-" : "p50 \(seconds(p.p50))  p99 \(seconds(p.p99))  max \(seconds(p.max))  (n=\(p.count))"
        }
        var rows: [(String, String)] = [
            ("seed", "\(seed)"),
            ("nodes", "\(nodes)"),
            ("simulated", seconds(durationSeconds)),
            ("lifeguard", lifeguard ? "on" : "off"),
            ("loss", format(loss * 100, digits: 2) + " %"),
            ("suspicion floor", seconds(suspicionFloorSeconds)),
            ("detection, any observer", summary(detection.allObservers)),
            ("detection, first observer", summary(detection.firstObserver)),
            ("detection, last observer", summary(detection.lastObserver)),
            ("crash to first suspicion", summary(detection.firstSuspicion)),
            ("detection after suspicion", summary(detection.sinceFirstSuspicion)),
            ("detection bound", seconds(detection.boundSeconds)),
            ("false positives", "\(falsePositives)"),
            ("late verdicts (paused, slow)", "\(foundedLateVerdicts)"),
            ("false suspicions", "\(falseSuspicions)"),
        ]
        if let dissemination {
            rows.append(
                (
                    "dissemination to all",
                    dissemination.seconds.map {
                        "\(seconds($0))  \(format(dissemination.periods ?? 0, digits: 2)) periods"
                            + "  (goal \(format(dissemination.goalPeriods, digits: 1)))"
                    } ?? "not reached"
                ))
        }
        rows += [
            ("datagrams/node/s", format(traffic.datagramsPerNodePerSecond, digits: 2)),
            ("messages/node/s", format(traffic.messagesPerNodePerSecond, digits: 2)),
            ("UDP bytes/node/s", format(traffic.bytesPerNodePerSecond, digits: 0)),
            ("TCP bytes/node/s", format(traffic.tcpBytesPerNodePerSecond, digits: 0)),
        ]
        if !pauses.isEmpty {
            rows.append(("pauses", "\(pauses.count)"))
            rows.append(("pauses suspected", "\(pauses.filter { $0.suspectedBy > 0 }.count)"))
            rows.append(("pauses declared dead", "\(pauses.filter { $0.declaredDeadBy > 0 }.count)"))
        }
        if !slowEpisodes.isEmpty {
            rows.append(("slow episodes", "\(slowEpisodes.count)"))
            rows.append(("false positives by slow nodes", "\(slowEpisodes.map(\.falsePositives).reduce(0, +))"))
            rows.append(("false suspicions by slow nodes", "\(slowEpisodes.map(\.falseSuspicions).reduce(0, +))"))
            rows.append(("slow nodes' peak local health", "\(slowEpisodes.map(\.peakLocalHealth).max() ?? 0)"))
            rows.append(("slow episodes declared dead", "\(slowEpisodes.filter { $0.declaredDeadBy > 0 }.count)"))
        }
        rows += [
            ("events", "\(events)"),
            ("speed", format(simulatedSecondsPerWallSecond, digits: 1) + " simulated s per wall s"),
            ("digest", digest),
        ]
        for invariant in invariants {
            rows.append((invariant.held ? "held" : "VIOLATED", invariant.name))
            if !invariant.held {
                rows += invariant.examples.prefix(5).map { ("", "  " + $0) }
            }
        }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { key, value in
            key + String(repeating: " ", count: width - key.count) + "  " + value
        }
    }
}

/// Fixed-point decimal text without Foundation.
func format(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard digits > 0 else { return sign + "\(whole)" }
    let text = String(fraction)
    return sign + "\(whole)." + String(repeating: "0", count: digits - text.count) + text
}
