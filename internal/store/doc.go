// Package store keeps keygate's data in one DynamoDB table (its schema is
// internal/schema) and is the only package that speaks DynamoDB.
//
// # Item layout
//
//	item          pk                  sk                     other attributes
//	key           KEY#<hash>          KEY                    id name ownerId type env hint scopes enabled
//	                                                         revokedAt createdAt updatedAt notBefore expiresAt
//	                                                         rateLimits quota origins cidrs stages metadata
//	                                                         version previousKeyId nextKeyId lastUsedAt
//	                                                         rl (rate counters) q (quota counters) usage (per day)
//	                                                         gsi1pk=OWNER#<owner> gsi1sk=<createdAt>#<id>
//	                                                         gsi2pk=DUE#<shard> gsi2sk=<due>#<id> (scheduled
//	                                                         work; shard 00-15 from the id) ttl
//	                                                         lcExpiringFor lcExpiredFor lcIdleFor (what the
//	                                                         scheduled run has done, see Lifecycle)
//	key id        ID#<id>             ID                     hash ownerId ttl (the key item's, once set)
//	audit record  AUDIT#<keyId>       <time>#<version>       keyId at actor action version changes (JSON, never a
//	                                                         secret); no ttl: the trail outlives the key
//	idempotency   IDEM#<scope>#<key>  IDEM                   digest (SHA-256 of the request) token state
//	                                                         (pending|done) leaseUntil status response
//	                                                         (sealed by the caller, AES-256-GCM) ttl (24 h)
//	signing key   SIGNKEY             <kid>                  jwk (public key only) source (kms:<key> | local)
//	                                                         createdAt notBefore notAfter ttl (set when a newer
//	                                                         key takes over: notAfter + longest token + leeway)
//	signing head  SIGNKEY             ~head                  version (serialises rotations)
//
// <hash> is the lowercase hex HMAC-SHA-256 of the plaintext key (see
// internal/apikey); times are Unix milliseconds; ttl is Unix seconds.
//
// # Access patterns
//
//   - verify a key (authorizer): one conditional UpdateItem on KEY#<hash>
//     that checks state and limits and counts usage together (Verify, in
//     verify.go). Counters: rl["<limit>@<windowStartUnix>"] (fixed windows
//     aligned to the epoch), q["d2026-11-26" | "m2026-11" | "total"],
//     usage["2026-11-26"], and lastUsedAt. The condition also checks
//     environment, type against the method, required scopes (contains),
//     stage, and a guard that the limits it counts (rateLimits, quota) are
//     exactly the stored ones.
//     Counters of windows that ended more than 5 s ago are removed by the
//     same update. Refund takes back an admitted update's counts when a
//     check DynamoDB cannot do (CIDR, wildcard origin) refuses afterwards;
//   - get a key by hash: GetItem KEY#<hash>;
//   - get a key by id (admin API): GetItem ID#<id> (strongly consistent),
//     then GetItem KEY#<hash>;
//   - list an owner's keys: Query gsi1 on OWNER#<owner>, newest first, with a
//     signed, opaque cursor;
//   - usage per day: the usage map of the key item (one attribute per UTC
//     day, written by the verifying UpdateItem, so no extra round trip);
//   - audit trail of a key: Query AUDIT#<keyId>, oldest first, signed cursor;
//     a key's creation writes its first record in the creating transaction;
//   - idempotent retries of admin calls: a conditional PutItem claims
//     IDEM#<scope>#<key> (absent, or a pending lease that ran out, or past its
//     ttl); the change's own transaction completes it (conditional on the
//     claim's token), so change and stored response commit together;
//   - token signing keys: one strongly consistent Query SIGNKEY reads the
//     whole published set (the JWKS); a rotation is one transaction that
//     bumps the head's version (conditionally), puts the new key and ends
//     the previous one (see internal/token);
//   - scheduled lifecycle work: Query gsi2 on each DUE#<shard> for
//     gsi2sk < now (never a scan), then a strongly consistent BatchGetItem of
//     those key items; each step is one transaction conditional on the
//     item's version and gsi2sk being as read (see Advance);
//   - rotation: one transaction that creates the new key (key and id items)
//     and sets the old key's nextKeyId and expiresAt, conditional on the old
//     key being unchanged, enabled, unexpired and not rotated (see Rotate).
//
// Counters of windows that ended more than 5 s ago (the allowance for clock
// skew between environments) are removed by the next verifying update, so
// the key item stays small.
//
// # Indexes
//
// gsi1 lists an owner's keys newest first and carries the key's settings;
// gsi2 is the schedule below and carries keys only. Neither projects the
// counters and lastUsedAt that every verification rewrites, so a
// verification writes the table and no index; a listing (List) therefore
// has no lastUsedAt, while Get does. The key item is addressed by the key's
// hash, so the authorizer reaches it in one request.
//
// Creating a key writes the key item and its id item in one transaction,
// each conditional on not existing, so a create never overwrites anything.
// Items past their retention carry ttl and are deleted by DynamoDB's TTL.
//
// # The schedule (gsi2)
//
// A key item is on the schedule while it has lifecycle work ahead: gsi2pk is
// one of DueShards fixed partitions chosen by a hash of the id (spreading
// keys that fall due together), gsi2sk its next due time in zero-padded Unix
// ms and its id. Create, Update and Rotate put a key due at once, so the
// rotator's next run plans it with its own settings (expiry notice, maximum
// age, idle days) and sets its next due time; the run advances it after each
// step (at most 30 days ahead) and takes it off the schedule (removing
// gsi2pk/gsi2sk) once it is revoked or expired. Update also
// removes ttl, which the run sets again if the key is still expired. An
// expired key gets ttl = expiry + retention, and its id item the same ttl (a
// revoked key's id item gets the key item's), so both go together.
//
// Errors are fault errors: NotFound, Conflict (a conditional write lost),
// PreconditionFailed (a version did not match), Throttled and Unavailable.
package store
