/// What went wrong, in kinds a caller can act on: the CLI prints the message and exits 1,
/// the HTTP layer maps each kind to a status code (see TriageHTTP's `ErrorMapping`).
public struct ServiceError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The request itself is wrong (malformed JSON, a field of the wrong type).
        case invalidInput
        /// An input is too long for the model and truncation was not asked for.
        case inputTooLong
        /// The request body is larger than the server accepts.
        case payloadTooLarge
        /// Nothing to do (an empty batch).
        case empty
        /// More inputs in one request than the client batch limit.
        case tooManyInputs
        /// The model directory or a file in it (or the config file) cannot be used.
        case badModel
        /// The admission limit is reached: try again later.
        case overloaded
        /// The request waited longer than its deadline.
        case timedOut
        /// Not serving: still loading, or draining for shutdown.
        case unavailable
        /// A fault of ours (a failed forward pass, a failed record write).
        case `internal`
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}
