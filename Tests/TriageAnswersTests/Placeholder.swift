import Testing
@Test func answersPlaceholder() {}
