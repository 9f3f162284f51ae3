#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A persistent pool of worker threads for the forward pass.
///
/// A matrix product for one short query takes tens of microseconds, far less than waking a
/// thread through the scheduler; `DispatchQueue.concurrentPerform` measured slower than one
/// thread at that size. So the workers stay alive, spin briefly after each job (the next
/// product follows within microseconds) and only then park on a condition variable.
public final class WorkerPool: @unchecked Sendable {
    /// Threads taking part in a job, the caller included.
    public let threadCount: Int

    private typealias Job = (Int) -> Void
    private var job: UnsafeMutablePointer<Job>? = nil
    /// High 32 bits: generation of the current job; low 32 bits: next task index.
    private let ticket = Atomic<UInt64>(0)
    /// High 32 bits: generation; low 32 bits: its task count. Tagged with the generation
    /// because a worker still leaving the previous job can read it after the next job has
    /// begun: a plain count would then let it claim an index of the old generation that the
    /// new one also runs (seen: a task run twice, another not at all).
    private let limit = Atomic<UInt64>(0)
    private let generation = Atomic<UInt32>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var sleepers = 0
    private var threads: [pthread_t] = []
    /// Spin iterations before a worker parks (about 50 µs).
    private let spinLimit = 20_000

    public init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for index in 1..<threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool?.workerLoop()
                return nil
            }, box.toOpaque())
            if rc == 0 { self.threads.append(thread) } else { box.release() }
        }
    }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Runs `body(i)` for every i in 0..<count across the pool, the caller included, and
    /// returns when all are done. Calls must not overlap (one forward pass at a time).
    public func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threads.isEmpty {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            let slot = UnsafeMutablePointer<Job>.allocate(capacity: 1)
            slot.initialize(to: escaping)
            defer { slot.deinitialize(count: 1); slot.deallocate() }
            precondition(count < 1 << 32)
            job = slot
            pending.store(count, ordering: .relaxed)
            let gen = generation.load(ordering: .relaxed) &+ 1
            limit.store(UInt64(gen) << 32 | UInt64(count), ordering: .releasing)
            ticket.store(UInt64(gen) << 32, ordering: .releasing)
            generation.store(gen, ordering: .releasing)
            pthread_mutex_lock(&mutex)
            if sleepers > 0 { pthread_cond_broadcast(&condition) }
            pthread_mutex_unlock(&mutex)
            work(generation: gen)
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
        }
    }

    /// Splits 0..<total into at most `threadCount` contiguous chunks, aligned to `grain`.
    public func parallelRanges(_ total: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let units = (total + grain - 1) / grain
        let chunks = min(threadCount, units)
        if chunks <= 1 { body(0..<total); return }
        run(chunks) { c in
            let lo = units * c / chunks * grain, hi = min(total, units * (c + 1) / chunks * grain)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Claims and runs tasks of generation `gen` until none is left. A successful claim of an
    /// index below that generation's count means the job is unfinished, so `job` is still its
    /// closure: the next job cannot start before every task of this one has been run.
    private func work(generation gen: UInt32) {
        while true {
            let t = ticket.load(ordering: .acquiring)
            if UInt32(truncatingIfNeeded: t >> 32) != gen { return }
            let l = limit.load(ordering: .acquiring)
            if UInt32(truncatingIfNeeded: l >> 32) != gen { return }
            let index = Int(t & 0xFFFF_FFFF)
            if index >= Int(l & 0xFFFF_FFFF) { return }
            if ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing).exchanged {
                job!.pointee(index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    fileprivate func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < spinLimit {
                spinPause()
                spins += 1
            }
            if generation.load(ordering: .acquiring) == seen {
                pthread_mutex_lock(&mutex)
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(&condition, &mutex) }
                sleepers -= 1
                pthread_mutex_unlock(&mutex)
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = generation.load(ordering: .acquiring)
            work(generation: seen)
        }
    }

    @inline(__always)
    private func spinPause() {
        // A cheap relax hint for the sibling hyper-thread; an atomic load keeps it portable.
        _ = stopping.load(ordering: .relaxed)
    }
}

private final class WorkerStart {
    weak var pool: WorkerPool?
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}
