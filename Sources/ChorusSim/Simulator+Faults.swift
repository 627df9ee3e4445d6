import ChorusCore

/// Injecting the scenario's faults: crashes, pauses, partitions, announcements.
extension Simulator {
    func strike(_ fault: Fault, index: Int) {
        mixEvent(8, index)
        switch fault {
        case .crash(let node):
            crash(node)
        case .pause(let node, let duration):
            pause(node, for: duration)
        case .partition(let partition, let duration):
            partitions.start(partition, id: index)
            schedule(.heal(partition: index), after: duration)
        case .announce(let node):
            guard !crashed[node] else { return }
            if paused[node] { return }
            execute(node, nodes[node].setTags(["sim-announce": "\(index)"], now: now))
            startAnnouncement(node)
            reschedule(node)
        }
    }

    func crash(_ node: Int) {
        guard !crashed[node] else { return }
        crashed[node] = true
        if paused[node] { endPause(node) }
        paused[node] = false
        pending[node] = []
        tickGeneration[node] &+= 1
        recordCrash(node)
        let crashNumber = observations.crashes.count - 1
        if now + scenario.effectiveDetectionBound <= end {
            schedule(.detectionCheck(crash: crashNumber), after: scenario.effectiveDetectionBound)
        }
    }

    func pause(_ node: Int, for duration: Duration) {
        guard !crashed[node] else { return }
        let until = now + duration
        if paused[node] {
            pauseEnds[node] = max(pauseEnds[node], until)
        } else {
            paused[node] = true
            pauseEnds[node] = until
            tickGeneration[node] &+= 1
            scheduledTick[node] = .max
            pauseHistory[node].append((now, until))
            recordPause(node, duration: duration)
        }
        queue.schedule(.resume(node: node), at: until.nanoseconds)
    }

    func resume(_ node: Int) {
        guard paused[node], !crashed[node], now >= pauseEnds[node] else { return }
        paused[node] = false
        endPause(node)
        mixEvent(9, node)
        let waiting = pending[node]
        pending[node] = []
        if scenario.resumeOrder == .timersFirst { execute(node, nodes[node].tick(now: now)) }
        for inbound in waiting {
            switch inbound {
            case .datagram(let from, let messages):
                execute(node, nodes[node].receive(messages, from: ids[from], at: addresses[from], now: now))
            case .tcpProbeAnswer(let sequence, let target, let reachable):
                execute(
                    node,
                    nodes[node].tcpProbeAnswered(sequence: sequence, target: target, reachable: reachable, now: now))
            case .merge(let state):
                execute(node, nodes[node].mergeFullState(state, now: now))
            }
        }
        if scenario.resumeOrder == .inboundFirst { execute(node, nodes[node].tick(now: now)) }
        reschedule(node, afterTick: true)
        resumedPause(node)
    }

    private func endPause(_ node: Int) {
        if var last = pauseHistory[node].popLast() {
            last.end = now
            pauseHistory[node].append(last)
        }
    }

    func heal(_ partition: Int) {
        mixEvent(10, partition)
        partitions.heal(id: partition)
        if case .partition(let healed, _) = scenario.faults[partition].fault {
            for node in healed.from + healed.to where node < nodes.count { lastCutOff[node] = now }
        }
        let check = min(now + scenario.convergenceBound, end)
        queue.schedule(.convergenceCheck(partition: partition), at: check.nanoseconds)
    }

    /// Whether `node` was paused at any time in `[from, to]`.
    func wasPaused(_ node: Int, from: MonotonicTime, to: MonotonicTime) -> Bool {
        if paused[node] { return true }
        return pauseHistory[node].contains { $0.start <= to && $0.end >= from }
    }
}
