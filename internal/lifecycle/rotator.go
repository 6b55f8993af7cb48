package lifecycle

// The event types of rotation and of the rotator's scheduled run. Like the
// others they are a contract with rule authors; never rename one.
const (
	// KeyRotated: a key was replaced by a new one (detail: newKeyId, the
	// old key's expiresAt at the end of its grace period).
	KeyRotated = "key.rotated"
	// KeyExpiring: a key expires within the configured notice period.
	KeyExpiring = "key.expiring"
	// KeyExpired: a key passed its expiry (sent once per expiry).
	KeyExpired = "key.expired"
	// KeyIdle: a key has not been used for the configured number of days.
	KeyIdle = "key.idle"
	// KeyDisabled: the scheduled run disabled a key (an idle key, when so
	// configured).
	KeyDisabled = "key.disabled"
)

// Rotator is the actor of the changes the rotator's scheduled run makes,
// in audit records and events.
const Rotator = "keygate:rotator"
