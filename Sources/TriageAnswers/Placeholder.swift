// The answer book lives here.
