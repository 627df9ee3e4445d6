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
        case .slow(let node, let duration, let lag, let timerLag):
            slowDown(node, for: duration, lag: lag, timerLag: timerLag)
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
        for inbound in waiting { process(inbound, at: node) }
        if scenario.resumeOrder == .inboundFirst { execute(node, nodes[node].tick(now: now)) }
        reschedule(node, afterTick: true)
        resumedPause(node)
    }

    /// Hands one inbound to the node's core and executes the effects.
    func process(_ inbound: Inbound, at node: Int) {
        switch inbound {
        case .datagram(let from, let messages):
            execute(node, nodes[node].receive(messages, from: ids[from], at: addresses[from], now: now))
        case .tcpProbeAnswer(let sequence, let target, let reachable):
            execute(
                node, nodes[node].tcpProbeAnswered(sequence: sequence, target: target, reachable: reachable, now: now))
        case .merge(let state):
            execute(node, nodes[node].mergeFullState(state, now: now))
        }
    }

    func slowDown(_ node: Int, for duration: Duration, lag: Duration, timerLag: Double) {
        guard !crashed[node] else { return }
        let until = now + duration
        if slowLag[node] != nil {
            slowEnds[node] = max(slowEnds[node], until)
        } else {
            slowEnds[node] = until
            slowHistory[node].append((now, until))
            recordSlow(node, duration: duration, lag: lag)
        }
        slowLag[node] = lag
        slowTimerLag[node] = lag.scaled(by: max(0, timerLag))
        queue.schedule(.endSlow(node: node), at: until.nanoseconds)
        reschedule(node)
    }

    func endSlow(_ node: Int) {
        guard slowLag[node] != nil, now >= slowEnds[node] else { return }
        slowLag[node] = nil
        if var last = slowHistory[node].popLast() {
            last.end = now
            slowHistory[node].append(last)
        }
        mixEvent(12, node)
        reschedule(node)
    }

    /// While the node is slow, or still reading what arrived while it was, `inbound`
    /// joins the back of its backlog (read `lag` after now, in order) and true is
    /// returned; a full backlog (the socket's receive buffer) drops it.
    func delayIfSlow(_ node: Int, _ inbound: Inbound) -> Bool {
        guard slowLag[node] != nil || backlog[node] > 0 else { return false }
        guard backlog[node] < scenario.receiveBuffer else {
            traffic.droppedWhileSlow += 1
            return true
        }
        let at = max(now + (slowLag[node] ?? .zero), backlogUntil[node])
        backlogUntil[node] = at
        backlog[node] += 1
        queue.schedule(.lateInbound(node: node, inbound: inbound), at: at.nanoseconds)
        return true
    }

    func lateInbound(_ node: Int, _ inbound: Inbound) {
        backlog[node] -= 1
        guard !crashed[node] else { return }
        if paused[node] {
            pending[node].append(inbound)
            return
        }
        mixEvent(11, node)
        process(inbound, at: node)
        reschedule(node)
        noteHealth(node)
    }

    /// Whether the node is slow now or still reading its backlog.
    func isSlow(_ node: Int) -> Bool { slowLag[node] != nil || backlog[node] > 0 }

    /// Whether `node` was slow at any time in `[from, to]`.
    func wasSlow(_ node: Int, from: MonotonicTime, to: MonotonicTime) -> Bool {
        if isSlow(node) { return true }
        return slowHistory[node].contains { $0.start <= to && $0.end >= from }
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
