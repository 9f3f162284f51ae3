import ArgumentParser
import TriageService

/// Where `ask` and `serve` record their decisions and which candidate model runs beside the
/// primary: the same options, checks and settings for both.
struct RecordOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Decision record (SQLite) to write.", valueName: "FILE")) var db: String?
    @Flag(help: "Keep the query text in the record (default: a salted hash only).") var recordText = false
    @Flag(help: "Do not record decisions.") var recordOff = false
    @Option(help: ArgumentHelp("A candidate edge model run beside the primary (default: the config's candidate.model).", valueName: "DIR"))
    var candidate: String?
    @Option(help: ArgumentHelp("Share of queries the candidate answers, by a stable hash of the text; 0 = shadow (default: candidate.share).", valueName: "X"))
    var candidateShare: Double?

    func validate() throws {
        if recordOff && (db != nil || recordText) { throw ValidationError("--record-off cannot be combined with --db or --record-text") }
        if let x = candidateShare, !(0...1).contains(x) { throw ValidationError("--candidate-share must be between 0 and 1") }
    }

    func apply(to settings: inout EngineSettings) {
        settings.recordText = recordText
        settings.recordOff = recordOff
        settings.recordPath = db
        settings.candidateModel = candidate
        settings.candidateShare = candidateShare
    }
}
