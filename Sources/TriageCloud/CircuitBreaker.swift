// A circuit breaker per cloud tier.
//
// Why: when a tier is down, every query would otherwise spend its full retry budget (three
// attempts, back-off, timeouts: tens of seconds) before falling back to the edge answer.
// After a run of failed requests the breaker fails fast instead, and after a cool-down lets a
// single trial request probe whether the tier has recovered — one request, so a recovering
// API is not hit by the whole backlog at once.
//
// It counts *requests*, not attempts: a request whose retries eventually succeeded is a
// success, because the retry layer already absorbed that fault. A request refused with a
// non-retryable 4xx (bad request, bad key) also counts as a success: the tier is up and
// answering promptly, and opening the breaker would not make that request any better.

import Synchronization
import TriageSystem

public final class CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable {
        case closed
        case open
        /// The cool-down is over: the next request is a trial.
        case halfOpen = "half_open"
    }

    private struct Inner {
        var state: State = .closed
        var consecutiveFailures = 0
        var openedAt = 0.0
        var trialInFlight = false
    }

    public let failureThreshold: Int
    public let cooldown: Double
    private let now: @Sendable () -> Double
    private let inner = Mutex(Inner())

    /// `now` is a monotonic clock in seconds, injectable so tests can step through the
    /// cool-down without waiting for it.
    public init(failureThreshold: Int = 5, cooldown: Double = 30,
                now: @escaping @Sendable () -> Double = { Clock.seconds() }) {
        self.failureThreshold = max(1, failureThreshold)
        self.cooldown = cooldown
        self.now = now
    }

    /// Whether a request may go out now. When it returns true the caller must report the
    /// request's result with `recordSuccess()` or `recordFailure()`; in the half-open state
    /// only one caller at a time gets true, and everyone else is rejected until it reports.
    public func tryAcquire() -> Bool {
        let t = now()
        return inner.withLock { s in
            switch s.state {
            case .closed:
                return true
            case .open:
                guard t - s.openedAt >= cooldown else { return false }
                s.state = .halfOpen
                s.trialInFlight = true
                return true
            case .halfOpen:
                if s.trialInFlight { return false }
                s.trialInFlight = true
                return true
            }
        }
    }

    public func recordSuccess() {
        inner.withLock { s in
            switch s.state {
            case .closed, .halfOpen:
                s = Inner()
            case .open:
                // A request that started before the breaker opened and finished late says
                // little about the tier now; the trial request decides.
                break
            }
        }
    }

    public func recordFailure() {
        let t = now()
        inner.withLock { s in
            switch s.state {
            case .closed:
                s.consecutiveFailures += 1
                if s.consecutiveFailures >= failureThreshold {
                    s.state = .open
                    s.openedAt = t
                }
            case .halfOpen:
                // The trial failed: back to open for another full cool-down.
                s.state = .open
                s.openedAt = t
                s.trialInFlight = false
            case .open:
                break
            }
        }
    }

    /// The state as a request would see it now: an open breaker whose cool-down has passed
    /// reports half-open, although the transition itself happens on the next `tryAcquire`.
    public var state: State {
        let t = now()
        return inner.withLock { s in
            if s.state == .open && t - s.openedAt >= cooldown { return .halfOpen }
            return s.state
        }
    }

    public var consecutiveFailures: Int { inner.withLock { $0.consecutiveFailures } }

    /// Seconds until an open breaker lets a trial through; 0 when not open.
    public var remainingCooldown: Double {
        let t = now()
        return inner.withLock { s in s.state == .open ? max(0, cooldown - (t - s.openedAt)) : 0 }
    }
}
