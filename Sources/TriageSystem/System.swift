// Thin, Foundation-free access to what the engine needs from the operating system:
// whole-file reads, read-only memory maps, a monotonic clock, the environment and stderr.
// Foundation is avoided in the engine so that a statically linked binary stays small.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct SystemError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let operation: String
    public let code: Int32
    public init(path: String, operation: String, code: Int32) {
        self.path = path; self.operation = operation; self.code = code
    }
    public var description: String {
        let reason = String(cString: strerror(code))
        return "cannot \(operation) \(path): \(reason)"
    }
}

public enum FileSystem {
    /// Reads a whole regular file into memory.
    public static func readBytes(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SystemError(path: path, operation: "stat", code: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw SystemError(path: path, operation: "read", code: EISDIR) }
        // Straight into an array of the file's size (no zero-filled chunk, no second copy);
        // whatever is left after that size (a file still growing, or one whose size stat does
        // not know) is read on in chunks.
        var failure: Int32 = 0
        var out = [UInt8](unsafeUninitializedCapacity: Int(st.st_size)) { buffer, count in
            count = 0
            while count < buffer.count {
                let n = read(fd, buffer.baseAddress! + count, buffer.count - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if n == 0 { break }
                count += n
            }
        }
        if failure != 0 { throw SystemError(path: path, operation: "read", code: failure) }
        var chunk = [UInt8](repeating: 0, count: 1 << 12)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(path: path, operation: "read", code: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if chunk.count < 1 << 16 { chunk = [UInt8](repeating: 0, count: 1 << 16) }
        }
        return out
    }

    /// Whether `bytes` are well-formed UTF-8 (the rules of Unicode's Table 3-7: no overlong
    /// forms, no surrogates, nothing above U+10FFFF), without building a String from them.
    public static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        var i = 0
        while i < n {
            // ASCII eight bytes at a time.
            if i + 8 <= n && bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8; continue }
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF, more = 0
            switch b {
            case 0xC2...0xDF: more = 1
            case 0xE0: more = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: more = 2
            case 0xED: more = 2; hi = 0x9F
            case 0xF0: more = 3; lo = 0x90
            case 0xF1...0xF3: more = 3
            case 0xF4: more = 3; hi = 0x8F
            default: return false
            }
            guard i + more < n else { return false }
            let second = bytes[i + 1]
            guard second >= lo && second <= hi else { return false }
            for j in 2..<(more + 1) where bytes[i + j] & 0xC0 != 0x80 { return false }
            i += more + 1
        }
        return true
    }

    public static func readText(_ path: String) throws -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes a file atomically: a temporary file in the same directory, fsync, rename.
    public static func writeAtomically(_ path: String, bytes: UnsafeRawBufferPointer) throws {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SystemError(path: tmp, operation: "create", code: errno) }
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno; close(fd); unlink(tmp)
                throw SystemError(path: tmp, operation: "write", code: e)
            }
            off += n
        }
        if fsync(fd) != 0 { let e = errno; close(fd); unlink(tmp); throw SystemError(path: tmp, operation: "sync", code: e) }
        close(fd)
        if rename(tmp, path) != 0 { let e = errno; unlink(tmp); throw SystemError(path: path, operation: "rename to", code: e) }
    }

    public static func writeAtomically(_ path: String, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in try writeAtomically(path, bytes: raw) }
    }

    public static func writeAtomically(_ path: String, text: String) throws {
        try writeAtomically(path, bytes: Array(text.utf8))
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// A regular file (or a link to one) that this process may read.
    public static func isReadableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, R_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    /// Creates a directory and its parents (like `mkdir -p`).
    public static func createDirectory(_ path: String) throws {
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if !isDirectory(prefix) && mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw SystemError(path: prefix, operation: "create directory", code: errno)
            }
            prefix += "/"
        }
    }

    public static func copyFile(from src: String, to dst: String) throws {
        try writeAtomically(dst, bytes: try readBytes(src))
    }

    /// A sibling of directory `dir` named by a suffix ("weights/m/" + "-int8" → "weights/m-int8").
    public static func sibling(of dir: String, suffix: String) -> String {
        var d = dir
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d + suffix
    }

    public static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// The directory holding the running executable, from /proc/self/exe.
    public static func executableDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}

/// A read-only memory map of a whole file. Tensors are read from it without copying.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let length: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SystemError(path: path, operation: "stat", code: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw SystemError(path: path, operation: "map", code: EISDIR) }
        length = Int(st.st_size)
        if length == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SystemError(path: path, operation: "map", code: errno)
        }
        bytes = UnsafeRawBufferPointer(start: p, count: length)
    }

    deinit {
        if length > 0, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), length) }
    }

    /// Tells the kernel that `range` (byte offsets into the file) is read at random, so that a
    /// page fault there reads no readahead window from disk around it. Only the whole pages
    /// inside the range are advised. Advice only; a failure changes nothing.
    public func adviseRandomAccess(_ range: Range<Int>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard length > 0, page > 0, let base = bytes.baseAddress else { return }
        let start = (range.lowerBound + page - 1) / page * page, end = min(length, range.upperBound) / page * page
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_RANDOM) }
    }
}

public enum Clock {
    /// Monotonic time in nanoseconds.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static func seconds() -> Double { Double(nanoseconds()) * 1e-9 }

    /// Wall-clock time, seconds since the Unix epoch.
    public static func unixTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}

public enum Environment {
    public static func get(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }
}

public enum StandardError {
    public static func write(_ text: String) {
        var t = text
        t.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(2, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}

public enum StandardOutput {
    /// Writes and flushes: every answer must reach the reader before the next is computed.
    public static func write(_ text: String) {
        var t = text
        t.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(1, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }
}

/// Reads standard input line by line without Foundation.
public struct LineReader {
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private let fd: Int32

    public init(fd: Int32 = 0) { self.fd = fd }

    public mutating func next() -> String? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                var end = nl
                if end > start && buffer[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = nl + 1
                return line
            }
            if eof {
                if start < buffer.count {
                    let line = String(decoding: buffer[start...], as: UTF8.self)
                    start = buffer.count
                    return line
                }
                return nil
            }
            if start > 0 { buffer.removeFirst(start); start = 0 }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { eof = true } else { buffer.append(contentsOf: chunk[0..<n]) }
        }
    }
}
