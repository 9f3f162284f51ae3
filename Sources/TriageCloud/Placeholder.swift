// The cloud tier client lives here.
