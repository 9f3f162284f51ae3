import Testing
@Test func recordPlaceholder() {}
