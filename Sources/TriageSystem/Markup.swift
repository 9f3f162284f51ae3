/// `s` with the characters that mean something in HTML and XML (SVG) replaced by entities:
/// the one escaper of the HTML report and the SVG charts.
public func markupEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
