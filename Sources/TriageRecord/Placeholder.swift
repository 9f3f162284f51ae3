import CSQLite
// The decision record lives here.
public func sqliteVersion() -> String { String(cString: sqlite3_libversion()) }
