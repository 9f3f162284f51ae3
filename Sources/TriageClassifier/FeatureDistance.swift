import TriageJSON
import TriageKernels
import TriageSystem
import TriageTensors

/// A feature-distance out-of-scope score (triage.json's `oos_distance`): the squared Mahalanobis
/// distance, under the in-scope classes' shared covariance, from a query's pooled feature to the
/// nearest in-scope class mean. The softmax can be confidently wrong far from every training
/// query ("what's the capital of France" → a banking intent); the distance sees that the feature
/// lies far from all of them.
///
/// The statistics are a small float32 safetensors file beside the weights, written by
/// tools/feature_oos.py from the training split: `whitening` W (dim × dim, WᵀW = Σ⁺) and `means`
/// (classes × dim, already whitened: W·μ_c), so that d(x) = min_c ‖W·x − W·μ_c‖² — one
/// matrix-vector product per query and no cancellation.
public struct FeatureDistance: Sendable, Equatable {
    /// Which pooled feature the statistics were fitted on.
    public enum Feature: String, Sendable, Equatable {
        /// The classifier's own input, ReLU(pre_classifier([CLS])).
        case preClassifier = "pre_classifier"
        /// The last layer's [CLS] state.
        case cls
    }

    public var feature: Feature
    /// The statistics file, as triage.json names it (relative to the model directory).
    public var file: String
    /// Above this distance the decision is out of scope (besides the softmax rule).
    public var threshold: Double
    public var dim: Int
    public var classes: Int
    let whitening: FloatValues
    let means: FloatValues

    public init(feature: Feature, file: String, threshold: Double, dim: Int, whitening: [Float], means: [Float]) throws {
        try self.init(feature: feature, file: file, threshold: threshold, dim: dim,
                      whitening: FloatValues(whitening), means: FloatValues(means))
    }

    init(feature: Feature, file: String, threshold: Double, dim: Int, whitening: FloatValues, means: FloatValues) throws {
        guard dim > 0, whitening.count == dim * dim, means.count > 0, means.count % dim == 0 else {
            throw ClassifierError("oos_distance: whitening must be \(dim) × \(dim) and means a multiple of \(dim) values")
        }
        guard whitening.allFinite, means.allFinite else {
            throw ClassifierError("oos_distance: the statistics hold a value that is not finite")
        }
        self.feature = feature; self.file = file; self.threshold = threshold; self.dim = dim
        self.classes = means.count / dim; self.whitening = whitening; self.means = means
    }

    /// Reads the `oos_distance` object of a model's triage.json and the statistics file it names;
    /// the model's hidden size is checked later, by `Classifier.load`.
    public static func load(_ json: JSONValue, directory: String) throws -> FeatureDistance {
        guard let pairs = json.objectPairs else { throw ClassifierError("oos_distance must be an object") }
        var kind: String?, featureName: String?, file: String?, threshold: Double?
        for (key, value) in pairs {
            switch key {
            case "kind": kind = value.stringValue
            case "feature": featureName = value.stringValue
            case "file": file = value.stringValue
            case "threshold": threshold = value.doubleValue
            default: throw ClassifierError("unknown key oos_distance.\(key) (expected kind, feature, file, threshold)")
            }
        }
        guard kind == "mahalanobis" else { throw ClassifierError("oos_distance.kind must be \"mahalanobis\"") }
        guard let featureName, let feature = Feature(rawValue: featureName) else {
            throw ClassifierError("oos_distance.feature must be \"pre_classifier\" or \"cls\"")
        }
        guard let file, !file.isEmpty, !file.hasPrefix("/"), !file.split(separator: "/").contains("..") else {
            throw ClassifierError("oos_distance.file must name a file in the model directory")
        }
        guard let threshold, threshold.isFinite, threshold >= 0 else {
            throw ClassifierError("oos_distance.threshold must be a non-negative number")
        }
        let path = FileSystem.join(directory, file)
        guard FileSystem.exists(path) else { throw ClassifierError("oos_distance: \(path) does not exist") }
        do {
            let st = try SafeTensorsFile(path: path)
            let names = Set(st.tensors.map(\.name))
            guard names == ["whitening", "means"] else {
                throw ClassifierError("expected exactly the tensors whitening and means, found \(names.sorted().joined(separator: ", "))")
            }
            let w = st.info("whitening")!, m = st.info("means")!
            guard w.dtype == .F32, m.dtype == .F32 else { throw ClassifierError("whitening and means must be F32") }
            guard w.shape.count == 2, w.shape[0] == w.shape[1], m.shape.count == 2, m.shape[1] == w.shape[0], m.shape[0] >= 1 else {
                throw ClassifierError("whitening must be [dim, dim] and means [classes, dim]; found \(w.shape) and \(m.shape)")
            }
            return try FeatureDistance(feature: feature, file: file, threshold: threshold, dim: w.shape[0],
                                       whitening: try FloatValues(st, "whitening"), means: try FloatValues(st, "means"))
        } catch let e as ClassifierError {
            throw ClassifierError("\(path): \(e.message)")
        } catch {
            throw ClassifierError("\(path): \(error)")
        }
    }

    /// min over the classes of ‖W·x − m_c‖². Eight float lanes per step: it runs on every
    /// query, and the scalar Double loop it replaces (147,456 multiply-adds) cost ~0.2 ms,
    /// a tenth of a short INT8 query; the lanes keep the relative error near 1e-6.
    public func distance(_ x: ArraySlice<Float>) -> Float {
        precondition(x.count == dim, "feature of \(x.count) values, statistics of \(dim)")
        let xs = Array(x)
        var z = [Float](repeating: 0, count: dim)
        @inline(__always) func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
            var acc = SIMD8<Float>()
            var j = 0
            while j + 8 <= n {
                let u = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<Float>.self)
                let v = UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<Float>.self)
                acc += u * v
                j += 8
            }
            var s = acc.sum()
            while j < n { s += a[j] * b[j]; j += 1 }
            return s
        }
        whitening.withUnsafeBufferPointer { w in
            xs.withUnsafeBufferPointer { xp in
                for i in 0..<dim { z[i] = dot(w.baseAddress! + i * dim, xp.baseAddress!, dim) }
            }
        }
        var best = Float.infinity
        means.withUnsafeBufferPointer { m in
            z.withUnsafeBufferPointer { zp in
                for c in 0..<classes {
                    let row = m.baseAddress! + c * dim
                    var acc = SIMD8<Float>()
                    var i = 0
                    while i + 8 <= dim {
                        let d = UnsafeRawPointer(zp.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                            - UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
                        acc += d * d
                        i += 8
                    }
                    var s = acc.sum()
                    while i < dim { let d = zp[i] - row[i]; s += d * d; i += 1 }
                    best = min(best, s)
                }
            }
        }
        return best
    }

    /// A fingerprint of the statistics, for the model version.
    var fingerprint: String {
        let w = whitening.withUnsafeBytes { Fingerprint.of($0) }, m = means.withUnsafeBytes { Fingerprint.of($0) }
        return "\(feature.rawValue):\(String(w, radix: 16)):\(String(m, radix: 16)):\(threshold)"
    }
}

/// Float32 values read in place from the statistics file's memory map (no 670 KB copy and its
/// ~150 page faults at every start), or owned when built from an array.
final class FloatValues: @unchecked Sendable, Equatable {
    let pointer: UnsafePointer<Float>
    let count: Int
    private let owner: AnyObject

    init(_ values: [Float]) {
        let buffer = FloatBuffer(values)
        owner = buffer
        pointer = UnsafePointer(buffer.pointer)
        count = values.count
    }

    /// An F32 tensor of `file`, in place when 4-byte aligned in the mapping, else copied.
    convenience init(_ file: SafeTensorsFile, _ name: String) throws {
        let bytes = try file.bytes(name)
        if let base = bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            self.init(pointer: base.assumingMemoryBound(to: Float.self), count: bytes.count / 4, owner: file)
        } else {
            self.init(try file.floats(name))
        }
    }

    private init(pointer: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer; self.count = count; self.owner = owner
    }

    /// No NaN or infinity: eight lanes at a time on the exponent bits (the scalar check cost
    /// ~1 M instructions over the 170,000 statistics at every start).
    var allFinite: Bool {
        withUnsafeBufferPointer { v in
            let exponent = SIMD8<UInt32>(repeating: 0x7F80_0000)
            var seen = SIMD8<UInt32>(repeating: 0)
            var i = 0
            while i + 8 <= v.count {
                let bits = unsafeBitCast(UnsafeRawPointer(v.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self), to: SIMD8<UInt32>.self)
                // An all-ones exponent (NaN, ±inf) carries into bit 31 when one more is added.
                seen |= ((bits & exponent) &+ SIMD8<UInt32>(repeating: 0x0080_0000)) & SIMD8<UInt32>(repeating: 0x8000_0000)
                i += 8
            }
            return seen == .zero && v[i...].allSatisfy(\.isFinite)
        }
    }

    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: pointer, count: count))
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(UnsafeBufferPointer(start: pointer, count: count)))
    }

    static func == (a: FloatValues, b: FloatValues) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }
}
