import Synchronization
import TriageAnswers
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageJSON
import TriageModel
import TriageRecord
import TriageSystem

/// Everything that decides how the engine is assembled: the CLI builds one from its flags,
/// `triage serve` from its own and keeps it to reload the same files on SIGHUP.
public struct EngineSettings: Sendable {
    public var modelDirectory: String
    public var classifier: Classifier.Options
    /// The config file (nil: $XDG_CONFIG_HOME/triage/config.json if it exists, else defaults).
    public var configPath: String?
    /// No cloud at all for `cascade` (the server also keeps an offline cascade per request).
    public var offline = false
    public var shadow = false
    public var recordText = false
    public var recordOff = false
    /// The record file (nil: the config's record path, else the default path).
    public var recordPath: String?
    /// The response cache file, or "memory" (nil: the config's cache.path, else the default file).
    public var cachePath: String?
    /// A candidate edge model and its share of the answers (nil: the config's candidate.*).
    public var candidateModel: String?
    public var candidateShare: Double?

    public init(modelDirectory: String, classifier: Classifier.Options = Classifier.Options(), configPath: String? = nil) {
        self.modelDirectory = modelDirectory; self.classifier = classifier; self.configPath = configPath
    }
}

/// The assembled cascade of one model directory and config: classifier (FP32 or its INT8
/// twin), answer book, cloud tiers with their circuit breakers, response cache and record.
/// Immutable and shared by every request; a reload builds a new one.
public final class Engine: Sendable {
    public let settings: EngineSettings
    public let config: TriageConfig
    public let classifier: Classifier
    public let answers: EdgeAnswerBook
    public let store: DecisionStore?
    /// The candidate edge model beside the primary one, if configured.
    public let candidate: CandidateModel?
    /// The cascade as `settings` say (offline or not).
    public let cascade: Cascade
    /// The same model, answer book, cache and record with no network, for a request that
    /// asks for offline answers.
    public let offlineCascade: Cascade
    public let loadedAt: Double
    /// The model's name and fingerprint, read once at load (the files may change on disk
    /// before a reload picks them up).
    public let modelVersion: String

    /// Loads and checks everything. `store` reuses an open record (a reload keeps the one
    /// connection); `warn` receives what is usable but worth saying (no answer book).
    public static func load(_ settings: EngineSettings, store reused: DecisionStore? = nil,
                            warn: (String) -> Void = { StandardError.write("triage: warning: \($0)\n") }) throws -> Engine {
        let config: TriageConfig
        do { config = try TriageConfig.load(path: settings.configPath) } catch { throw ServiceError(.badModel, "\(error)") }
        let classifier: Classifier
        do {
            classifier = try Classifier.load(directory: settings.modelDirectory, options: settings.classifier)
        } catch { throw ServiceError(.badModel, "\(error)") }
        let answers = try EdgeAnswerBook.load(directory: settings.modelDirectory, classifier: classifier, warn: warn)
        // Seed defaults, then the model's tuned routing (triage.json), then the config's router keys.
        let routerPolicy: RouterPolicy
        do { routerPolicy = try config.routerPolicy(tuned: classifier.calibration.routing) } catch {
            throw ServiceError(.badModel, "\(error)")
        }
        var candidate: CandidateModel? = nil
        if let dir = settings.candidateModel ?? config.candidateModel {
            do {
                let c = try Classifier.load(directory: dir, options: settings.classifier)
                guard c.labels == classifier.labels else {
                    throw ServiceError(.badModel, "candidate model \(dir) has other labels than \(settings.modelDirectory): they cannot be compared")
                }
                candidate = CandidateModel(classifier: c, share: settings.candidateShare ?? config.candidateShare,
                                           modelVersion: c.modelVersion)
            } catch let e as ServiceError { throw e } catch { throw ServiceError(.badModel, "candidate model: \(error)") }
        }
        var store = reused
        if store == nil && !settings.recordOff {
            do {
                store = try DecisionStore(path: settings.recordPath ?? config.recordPath ?? DecisionStore.defaultPath(),
                                          node: config.node, maxPending: config.maxPending)
            } catch {
                throw ServiceError(.internal, "\(error)")
            }
        }
        // The response cache outlives the process (a file shared with other `triage`
        // processes) unless nothing can reach the cloud anyway.
        let cacheStorage: ResponseCacheStorage
        do {
            cacheStorage = settings.offline ? InMemoryResponseCache() : try SQLiteResponseCache.storage(configuredPath: settings.cachePath ?? config.cachePath)
        } catch { throw ServiceError(.internal, "response cache: \(error)") }
        return Engine(settings: settings, config: config, classifier: classifier, answers: answers, store: store,
                      cacheStorage: cacheStorage, candidate: candidate, routerPolicy: routerPolicy)
    }

    init(settings: EngineSettings, config: TriageConfig, classifier: Classifier, answers: EdgeAnswerBook, store: DecisionStore?,
         cacheStorage: ResponseCacheStorage = InMemoryResponseCache(), candidate: CandidateModel? = nil,
         routerPolicy: RouterPolicy? = nil) {
        self.candidate = candidate
        self.settings = settings; self.config = config; self.classifier = classifier; self.answers = answers
        self.store = store
        let modelVersion = classifier.modelVersion
        self.modelVersion = modelVersion
        var options = CascadeOptions()
        options.shadow = settings.shadow
        options.recordText = settings.recordText
        options.edgeCostUSD = config.edgeCostUSD
        options.reviewSampleRate = config.reviewSampleRate
        options.reviewKeepText = config.reviewKeepText
        if let seed = config.reviewSampleSeed {
            let rng = Mutex(SplitMix64(seed: seed))
            options.random = { rng.withLock { Double.random(in: 0..<1, using: &$0) } }
        }
        if let prompt = config.systemPrompt { options.systemPrompt = prompt }
        if let store { options.hashQuery = { store.queryHash($0) } }
        let cache = ResponseCache(ttl: config.cacheTTL, capacity: config.cacheCapacity, historyTurns: config.cacheHistoryTurns,
                                  storage: cacheStorage)
        let small = CloudTierClient(config: config.small, endpoint: config.endpoint(for: config.small), policy: config.policy)
        let large = CloudTierClient(config: config.large, endpoint: config.endpoint(for: config.large), policy: config.policy)
        let router = Router(policy: routerPolicy ?? config.router)
        var offlineOptions = options
        offlineOptions.offline = true
        offlineOptions.shadow = false
        options.offline = settings.offline
        cascade = Cascade(classifier: classifier, answers: answers, router: router,
                          small: settings.offline ? nil : small, large: settings.offline ? nil : large,
                          cache: cache, sink: store, options: options, modelVersion: modelVersion, candidate: candidate)
        offlineCascade = settings.offline ? cascade : Cascade(
            classifier: classifier, answers: answers, router: router, small: nil, large: nil,
            cache: cache, sink: store, options: offlineOptions, modelVersion: modelVersion, candidate: candidate)
        loadedAt = Clock.unixTime()
    }

    /// The cloud tiers (nil when offline), for breaker states in metrics.
    public var tiers: [CloudTierClient] { [cascade.small, cascade.large].compactMap { $0 } }
}

/// The answer book of a model directory, as the cascade sees it.
public struct EdgeAnswerBook: EdgeAnswers {
    public let book: AnswerBook?

    /// The book must answer every in-scope intent of the model (its out-of-scope labels excepted).
    public static func load(directory: String, classifier: Classifier, warn: (String) -> Void) throws -> EdgeAnswerBook {
        let path = FileSystem.join(directory, "answers.json")
        guard FileSystem.exists(path) else {
            warn("\(path) not found; the edge has no answers and every query goes to the cloud")
            return EdgeAnswerBook(book: nil)
        }
        let book: AnswerBook
        do { book = try AnswerBook.load(path: path) } catch { throw ServiceError(.badModel, "\(error)") }
        let inScope = classifier.labels.filter { !classifier.calibration.isOutOfScope($0) }
        let problems = book.validate(against: inScope)
        if !problems.isEmpty { throw ServiceError(.badModel, "\(path) does not fit the model: " + problems.joined(separator: "; ")) }
        return EdgeAnswerBook(book: book)
    }

    public func answer(label: String, query: String) -> String? { book?.answer(for: label, query: query)?.text }

    public var cannotAnswerMessage: String {
        book?.outOfScopeMessage ?? "Sorry, I can't answer that right now. Please try again later or contact support."
    }
}
