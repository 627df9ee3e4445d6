import ChorusCore

/// The report of a run: measurements from `Observations` and `TrafficMeter`, and a
/// verdict per invariant.
extension Simulator {
    public func report() -> SimReport {
        let n = nodes.count
        let bound = scenario.effectiveDetectionBound.seconds
        var everyone: [Double] = []
        var firsts: [Double] = []
        var lasts: [Double] = []
        var sinceSuspicion: [Double] = []
        var suspicions: [Double] = []
        var crashes: [SimReport.Crash] = []
        for record in observations.crashes {
            let observers = record.observers.filter { !crashed[$0] }
            let latencies = observers.compactMap { record.detectedAfter[$0] }
            everyone += latencies
            let first = latencies.min()
            let last = latencies.count == observers.count ? latencies.max() : nil
            if let first { firsts.append(first) }
            if let last { lasts.append(last) }
            if let suspected = record.firstSuspectedAfter {
                suspicions.append(suspected)
                sinceSuspicion += latencies.map { $0 - suspected }
            }
            crashes.append(
                SimReport.Crash(
                    node: record.node, atSeconds: record.at.since(.zero).seconds,
                    firstSuspectedSeconds: record.firstSuspectedAfter, firstObserverSeconds: first,
                    lastObserverSeconds: last, observers: observers.count, detectedBy: latencies.count))
        }
        let period = scenario.settings.probeInterval.seconds
        let dissemination = observations.announcement.map { announcement -> SimReport.Dissemination in
            let seconds = announcement.reachedAllAt.map { $0.since(announcement.at).seconds }
            return SimReport.Dissemination(
                node: announcement.node, atSeconds: announcement.at.since(.zero).seconds,
                reachedAll: seconds != nil, seconds: seconds, periods: seconds.map { $0 / period },
                goalPeriods: 3 * SimMath.log2(Double(max(2, n))))
        }
        let window = max(0.001, now.since(traffic.windowStart).seconds)
        let perNode = 1 / (Double(n) * window)
        let trafficReport = SimReport.Traffic(
            windowSeconds: window,
            datagramsPerNodePerSecond: Double(traffic.datagrams) * perNode,
            messagesPerNodePerSecond: Double(traffic.messages) * perNode,
            bytesPerNodePerSecond: Double(traffic.bytes) * perNode,
            tcpBytesPerNodePerSecond: Double(traffic.tcpBytes) * perNode,
            datagramsLost: traffic.lost, datagramsDroppedWhilePaused: traffic.droppedWhilePaused,
            datagramsDroppedWhileSlow: traffic.droppedWhileSlow)
        let pauses = observations.pauses.map { record in
            SimReport.PauseOutcome(
                node: record.node, atSeconds: record.at.since(.zero).seconds, durationSeconds: record.duration.seconds,
                suspectedBy: record.suspectedBy.count, declaredDeadBy: record.deadBy.count,
                aliveEverywhereAfterSeconds: record.aliveEverywhereAfter)
        }
        let slowEpisodes = observations.slows.map { record in
            SimReport.SlowOutcome(
                node: record.node, atSeconds: record.at.since(.zero).seconds, durationSeconds: record.duration.seconds,
                lagSeconds: record.lag.seconds, peakLocalHealth: record.peakLocalHealth,
                falseSuspicions: record.falseSuspicions, falsePositives: record.falsePositives,
                suspectedBy: record.suspectedBy.count, declaredDeadBy: record.deadBy.count)
        }
        var falsePositives = observations.falsePositives
        let fpHeld = falsePositives.count <= scenario.allowedFalsePositives
        if fpHeld { falsePositives.examples = falsePositives.examples.prefix(3).map { $0 } }
        func verdict(_ name: String, _ violations: Observations.Violations, held: Bool? = nil) -> SimReport.Invariant {
            SimReport.Invariant(
                name: name, held: held ?? (violations.count == 0), violations: violations.count,
                examples: violations.examples)
        }
        let invariants = [
            verdict("no false positives beyond \(scenario.allowedFalsePositives)", falsePositives, held: fpHeld),
            verdict(
                "every crash detected by every live node within \(format(bound, digits: 1)) s",
                observations.detectionViolations),
            verdict(
                "views converge within \(format(scenario.convergenceBound.seconds, digits: 0)) s of a partition healing",
                observations.convergenceViolations),
            verdict("incarnations never go backwards", observations.incarnationViolations),
            verdict("every datagram fits maxPayloadBytes and decodes", observations.oversizeViolations),
        ]
        let simulated = now.since(.zero).seconds
        return SimReport(
            seed: scenario.seed, nodes: n, durationSeconds: simulated, lifeguard: scenario.settings.lifeguard,
            loss: scenario.network.loss, protocolPeriodSeconds: period,
            suspicionFloorSeconds: scenario.suspicionFloor.seconds,
            detection: SimReport.Detection(
                crashes: crashes, allObservers: Percentiles(everyone), firstObserver: Percentiles(firsts),
                lastObserver: Percentiles(lasts), sinceFirstSuspicion: Percentiles(sinceSuspicion),
                firstSuspicion: Percentiles(suspicions), boundSeconds: bound),
            falsePositives: observations.falsePositives.count,
            foundedLateVerdicts: observations.foundedLateVerdicts, falseSuspicions: observations.falseSuspicions,
            falsePositiveExamples: observations.falsePositives.examples, dissemination: dissemination,
            traffic: trafficReport, pauses: pauses, slowEpisodes: slowEpisodes, invariants: invariants,
            passed: invariants.allSatisfy(\.held), events: events, digest: digest.hex, wallSeconds: wallSeconds,
            simulatedSecondsPerWallSecond: wallSeconds > 0 ? simulated / wallSeconds : 0)
    }
}
