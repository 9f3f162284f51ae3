import Testing
@Test func cloudPlaceholder() {}
