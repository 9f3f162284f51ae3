// The CLI's commands are synchronous; the fleet's client is async. This runs one async
// operation to completion from synchronous code, on the cooperative pool.

import Dispatch

final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: Result<T, any Error>?
}

public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.value = .success(try await body()) } catch { box.value = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.value!.get()
}
