import ChorusCore

/// Keeping `Observations` current from the cores' `memberChanged` effects, and the
/// invariant checks that run at fixed points (detection and convergence deadlines).
extension Simulator {
    func observe(_ change: MemberChange, by observer: Int) {
        guard let subject = index(of: change.member.id) else { return }
        let previousRaw = UInt64(change.previous?.rawValue ?? 0xF)
        let currentRaw = UInt64(change.current?.rawValue ?? 0xF)
        digest.mix(6 | previousRaw << 8 | currentRaw << 16 | UInt64(observer) << 32)
        digest.mix(UInt64(subject))
        digest.mix(change.member.incarnation)
        if scenario.recordTrace {
            trace.append(
                "\(now) node \(observer) sees node \(subject) \(change.current.map { "\($0)" } ?? "forgotten")"
                    + " incarnation \(change.member.incarnation)")
        }

        let slot = observer * observations.nodeCount + subject
        let old = observations.status[slot]
        let new = change.current?.rawValue ?? Observations.unknown
        if change.current != nil {
            if change.member.incarnation < observations.incarnation[slot] {
                observations.incarnationViolations.add(
                    "\(now): node \(observer) moved node \(subject) from incarnation "
                        + "\(observations.incarnation[slot]) back to \(change.member.incarnation)")
            }
            observations.incarnation[slot] = change.member.incarnation
        }
        observations.status[slot] = new
        guard subject != observer else { return }
        let alive = MemberStatus.alive.rawValue
        if !crashed[observer] {
            if old == alive, new != alive { observations.aliveViews[subject] -= 1 }
            if old != alive, new == alive { observations.aliveViews[subject] += 1 }
        }
        if let announcement = observations.announcement, announcement.node == subject,
            change.member.incarnation >= announcement.incarnation, !announcement.seen[observer]
        {
            observations.announcement?.seen[observer] = true
            checkAnnouncement()
        }
        guard new != old else { return }
        let healthy =
            !crashed[subject] && !paused[subject] && !isSlow(subject) && partitions.connects(observer, subject)
        let slowObserver = observations.openSlow[observer]
        switch change.current {
        case .dead:
            if let crash = observations.crashIndex[subject] {
                let record = observations.crashes[crash]
                if record.detectedAfter[observer] == nil {
                    observations.crashes[crash].detectedAfter[observer] = now.since(record.at).seconds
                }
            } else if healthy {
                if wasUnresponsive(subject, within: scenario.verdictWindow) {
                    observations.foundedLateVerdicts += 1
                } else {
                    observations.falsePositives.add("\(now): node \(observer) declared live node \(subject) dead")
                    if let slowObserver { observations.slows[slowObserver].falsePositives += 1 }
                }
            }
            if let pause = observations.openPause[subject] { observations.pauses[pause].deadBy.insert(observer) }
            if let slow = observations.openSlow[subject] { observations.slows[slow].deadBy.insert(observer) }
        case .suspect:
            if healthy {
                observations.falseSuspicions += 1
                if let slowObserver { observations.slows[slowObserver].falseSuspicions += 1 }
            }
            if let slow = observations.openSlow[subject] { observations.slows[slow].suspectedBy.insert(observer) }
            if let crash = observations.crashIndex[subject], observations.crashes[crash].firstSuspectedAfter == nil {
                observations.crashes[crash].firstSuspectedAfter = now.since(observations.crashes[crash].at).seconds
            }
            if let pause = observations.openPause[subject] {
                observations.pauses[pause].suspectedBy.insert(observer)
            }
        default:
            break
        }
        if let pause = observations.openPause[subject], let resumed = observations.pauses[pause].resumedAt {
            if isAliveEverywhere(subject) {
                if observations.pauses[pause].aliveEverywhereAfter == nil {
                    observations.pauses[pause].aliveEverywhereAfter = now.since(resumed).seconds
                }
            } else {
                observations.pauses[pause].aliveEverywhereAfter = nil
            }
        }
    }

    /// Whether `node` was paused, slow or cut off by a partition at any time in the
    /// last `window`: a dead verdict about it now may stem from a suspicion begun then.
    func wasUnresponsive(_ node: Int, within window: Duration) -> Bool {
        let since = now + (.zero - window)
        if let cutOff = lastCutOff[node], cutOff >= since { return true }
        return partitions.isolatesAnyone(node) || wasPaused(node, from: since, to: now)
            || wasSlow(node, from: since, to: now)
    }

    /// Every live node but `subject` sees it alive.
    func isAliveEverywhere(_ subject: Int) -> Bool {
        observations.aliveViews[subject] == nodes.count - observations.crashedCount - 1
    }

    func recordCrash(_ node: Int) {
        let n = observations.nodeCount
        for subject in 0..<n where subject != node {
            if observations.status[node * n + subject] == MemberStatus.alive.rawValue {
                observations.aliveViews[subject] -= 1
            }
        }
        observations.crashedCount += 1
        observations.crashIndex[node] = observations.crashes.count
        observations.crashes.append(
            Observations.CrashRecord(node: node, at: now, observers: (0..<n).filter { $0 != node && !crashed[$0] }))
        if observations.announcement != nil { checkAnnouncement() }
    }

    func recordPause(_ node: Int, duration: Duration) {
        observations.openPause[node] = observations.pauses.count
        observations.pauses.append(Observations.PauseRecord(node: node, at: now, duration: duration))
    }

    func recordSlow(_ node: Int, duration: Duration, lag: Duration) {
        observations.openSlow[node] = observations.slows.count
        observations.slows.append(Observations.SlowRecord(node: node, at: now, duration: duration, lag: lag))
    }

    /// Tracks the highest local health a slow node reaches (Lifeguard's multiplier at work).
    func noteHealth(_ node: Int) {
        guard let slow = observations.openSlow[node], isSlow(node) else { return }
        let score = nodes[node].localHealth
        if score > observations.slows[slow].peakLocalHealth { observations.slows[slow].peakLocalHealth = score }
    }

    func resumedPause(_ node: Int) {
        guard let pause = observations.openPause[node] else { return }
        observations.pauses[pause].resumedAt = now
        if isAliveEverywhere(node) { observations.pauses[pause].aliveEverywhereAfter = 0 }
    }

    func startAnnouncement(_ node: Int) {
        var seen = [Bool](repeating: false, count: nodes.count)
        seen[node] = true
        observations.announcement = Observations.Announcement(
            node: node, at: now, incarnation: nodes[node].myself.incarnation, seen: seen)
        checkAnnouncement()
    }

    private func checkAnnouncement() {
        guard let announcement = observations.announcement, announcement.reachedAllAt == nil else { return }
        for node in nodes.indices where !crashed[node] && !announcement.seen[node] { return }
        observations.announcement?.reachedAllAt = now
    }

    /// SWIM's completeness, bounded: every node live at the crash (and not paused or
    /// slow since, which would excuse lateness) sees the crashed node dead within the bound.
    func checkDetection(_ crash: Int) {
        observations.crashes[crash].checked = true
        let record = observations.crashes[crash]
        let bound = scenario.effectiveDetectionBound.seconds
        for observer in record.observers where !crashed[observer] {
            if let after = record.detectedAfter[observer], after <= bound { continue }
            if wasPaused(observer, from: record.at, to: now) || wasSlow(observer, from: record.at, to: now) {
                continue
            }
            observations.detectionViolations.add(
                "node \(observer) did not see crashed node \(record.node) dead within \(format(bound, digits: 1)) s of \(record.at)"
            )
        }
    }

    /// After a partition heals: every live, unpaused node sees every other live node
    /// alive at its current incarnation, and every node crashed long enough ago dead.
    /// Nodes paused within the last suspicion ceiling are excused (they may still be
    /// refuting).
    func checkConvergence(after partition: Int) {
        let n = observations.nodeCount
        let recent = now + (.zero - scenario.suspicionCeiling - scenario.settings.probeInterval * 5)
        let excused = (0..<n).map {
            !crashed[$0] && (wasPaused($0, from: recent, to: now) || wasSlow($0, from: recent, to: now))
        }
        for observer in 0..<n where !crashed[observer] && !paused[observer] && !isSlow(observer) {
            for subject in 0..<n where subject != observer && !excused[subject] {
                let slot = observer * n + subject
                let seen = MemberStatus(rawValue: observations.status[slot])
                if crashed[subject] {
                    guard let crash = observations.crashIndex[subject],
                        observations.crashes[crash].at + scenario.effectiveDetectionBound <= now
                    else { continue }
                    if seen == .alive || seen == .suspect {
                        observations.convergenceViolations.add(
                            "\(now): node \(observer) still sees crashed node \(subject) \(seen!)")
                    }
                } else if seen != .alive || observations.incarnation[slot] != nodes[subject].myself.incarnation {
                    observations.convergenceViolations.add(
                        "\(now), after partition \(partition) healed: node \(observer) sees node \(subject) "
                            + "\(seen.map { "\($0)" } ?? "unknown") at incarnation \(observations.incarnation[slot]),"
                            + " which is at \(nodes[subject].myself.incarnation)")
                }
            }
        }
    }
}
