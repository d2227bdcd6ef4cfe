import Glibc
import SluiceIO
import Testing

@Suite("Event loop")
struct EventLoopTests {
    /// Two readable pipes reported in one batch; whichever handler runs first closes the other pipe and
    /// puts a fresh, empty pipe under the same descriptor number. The event already reported for the
    /// closed pipe must not reach the new handler.
    @Test("an event for a descriptor closed earlier in the same batch never reaches a new one with its number")
    func staleEventAfterNumberReuse() throws {
        let loop = try EventLoop()
        let first = try Pipe()
        let second = try Pipe()
        let spare = try Pipe()
        defer { for pipe in [first, second, spare] { pipe.close() } }
        first.write()
        second.write()

        let replacement = Recorder()
        let scenario = Scenario(loop: loop, spare: spare, replacement: replacement)
        try loop.register(first.readEnd, handler: scenario.handler(closing: second))
        try loop.register(second.readEnd, handler: scenario.handler(closing: first))
        loop.run()

        #expect(scenario.handled == 1)
        #expect(replacement.events == 0)
    }

    @Test("a timer fires only once its time has come, not when told its descriptor is readable")
    func timerIgnoresEarlyReadiness() throws {
        let loop = try EventLoop()
        var fired = false
        let timer = try DeadlineTimer(loop: loop, seconds: 30) { fired = true }
        defer { timer.cancel() }
        timer.handleEvent(0x001)  // EPOLLIN
        #expect(!fired)
    }
}

private final class Pipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw PipeError() }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    func write() {
        var byte: UInt8 = 1
        _ = Glibc.write(writeEnd, &byte, 1)
    }

    func close() {
        _ = Glibc.close(readEnd)
        _ = Glibc.close(writeEnd)
    }
}

private struct PipeError: Error {}

private final class Recorder: EventHandler {
    var events = 0
    func handleEvent(_ events: UInt32) { self.events += 1 }
}

private final class Scenario {
    let loop: EventLoop
    let spare: Pipe
    let replacement: Recorder
    var handled = 0

    init(loop: EventLoop, spare: Pipe, replacement: Recorder) {
        self.loop = loop
        self.spare = spare
        self.replacement = replacement
    }

    func handler(closing other: Pipe) -> EventHandler { Closer(scenario: self, other: other) }

    fileprivate final class Closer: EventHandler {
        let scenario: Scenario
        let other: Pipe
        init(scenario: Scenario, other: Pipe) {
            self.scenario = scenario
            self.other = other
        }

        func handleEvent(_ events: UInt32) {
            scenario.handled += 1
            guard scenario.handled == 1 else { return }
            let number = other.readEnd
            scenario.loop.unregister(number)
            // dup2 closes the old pipe's read end and puts the empty spare pipe in its place at once.
            _ = dup2(scenario.spare.readEnd, number)
            try? scenario.loop.register(number, handler: scenario.replacement)
            scenario.loop.stop()
        }
    }
}
