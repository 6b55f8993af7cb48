// Package store keeps keygate's data in one DynamoDB table (its schema is
// internal/schema) and is the only package that speaks DynamoDB.
//
// # Item layout
//
//	item          pk                  sk                     other attributes
//	key, hot      KEY#<hash>          KEY                    id ownerId type env scopes enabled revokedAt
//	                                                         notBefore expiresAt rateLimits quota origins cidrs
//	                                                         stages plan lastUsedAt ttl
//	                                                         rl q (counters that limit: rate windows, quota
//	                                                         periods) lf (their floor) usage spent useq
//	                                                         (counters that record: the day's requests and
//	                                                         credits, and the number of usage changes)
//	key, record   ID#<id>             ID                     id hash name ownerId type env hint scopes enabled
//	                                                         revokedAt createdAt updatedAt notBefore expiresAt
//	                                                         rateLimits quota origins cidrs stages metadata
//	                                                         version previousKeyId nextKeyId
//	                                                         gsi1pk=OWNER#<owner> gsi1sk=<createdAt>#<id>
//	                                                         gsi2pk=DUE#<shard> gsi2sk=<due>#<id> (scheduled
//	                                                         work; shard 00-15 from the id) ttl
//	                                                         lcExpiringFor lcExpiredFor lcIdleFor (what the
//	                                                         scheduled run has done, see Lifecycle)
//	key's day     USAGE#<owner>       K#<day>#<keyId>        keyId day n (requests) c (credits) sq (the last
//	                                                         useq applied) ttl (retention after the day)
//	owner's day   USAGE#<owner>       T#<day>                day gen tn tc tgen ttl (see OwnerUsage)
//	audit record  AUDIT#<keyId>       <time>#<version>       keyId at actor action version changes (JSON, never a
//	                                                         secret); no ttl: the trail outlives the key
//	idempotency   IDEM#<scope>#<key>  IDEM                   digest (SHA-256 of the request) token state
//	                                                         (pending|done) leaseUntil status response
//	                                                         (sealed by the caller, AES-256-GCM) ttl (24 h)
//	signing key   SIGNKEY             <kid>                  jwk (public key only) source (kms:<key> | local)
//	                                                         createdAt notBefore notAfter ttl (set when a newer
//	                                                         key takes over: notAfter + longest token + leeway)
//	signing head  SIGNKEY             ~head                  version (serialises rotations)
//	token exch.   TOKENX#<keyId>      <minuteStartUnix>      n (token exchanges in that minute) ttl (an hour after)
//
// <hash> is the lowercase hex HMAC-SHA-256 of the plaintext key (see
// internal/apikey); times are Unix milliseconds; ttl is Unix seconds.
//
// # The hot item
//
// A key is two items. The hot item holds what a verification reads and
// writes and nothing else: the settings the verifying condition checks or
// the authorizer passes on (the plan is the one piece of metadata it
// reads), lastUsedAt, and counters of the current windows, periods and day
// only. Everything that grows with time, and everything only the admin side
// reads (name, hint, the admin times, metadata, the rotation links, the
// index keys, the scheduled run's bookkeeping), lives on the record item.
// So the hot item's size does not depend on the key's age, and DynamoDB,
// which bills a write by the item's size (1 write unit per KB), bills a
// typical key's verification 1 unit on its first day and every day after
// (TestTypicalKeyCostsOneWriteUnitAtAnyAge; the settings it may hold are
// capped by key.MaxVerifyBytes, so that any key costs at most 5). Every
// admin change writes both items in one transaction (keyChange), so they
// never disagree, and sets or clears the ttl of both together.
//
// # Access patterns
//
//   - verify a key (authorizer): one conditional UpdateItem on KEY#<hash>
//     that checks state and limits and counts usage together (Verify, in
//     verify.go). Counters: rl["<limit>@<windowStartUnix>"] (fixed windows
//     aligned to the epoch) and q["d2026-11-26" | "m2026-11" | "total"],
//     which limit; usage["2026-11-26"] and spent["2026-11-26"] (requests
//     and credits of the day) and useq, which record; and lastUsedAt. The
//     condition also checks environment, type against the method, required
//     scopes (contains), stage, and a guard that the limits it counts
//     (rateLimits, quota) are exactly the stored ones. Counters of windows,
//     periods and days that ended more than 5 s ago are removed by the same
//     update, which raises the floor lf to the latest end of the limit
//     counters it removes; a verification counts only in windows and
//     periods that end after lf (Record.Floor), so clocks that differ never
//     admit a window twice. Refund takes back an admitted update's counts when a check
//     DynamoDB cannot do (CIDR, wildcard origin) refuses afterwards;
//   - reserve for a hot key (authorizer): the same UpdateItem, taking a
//     block from each limit's counter (condition counter <= limit - block)
//     and adding to the usage counters the request it admits and the
//     admissions the environment made from earlier blocks
//     (VerifyInput.Reserve, reserve.go); report (Report): one UpdateItem
//     that adds such admissions to the usage counters (one useq step), sets
//     lastUsedAt and gives back unused blocks, conditional on the item
//     existing and on each counter holding what is given back;
//   - get a key by id (admin API): GetItem ID#<id> (strongly consistent),
//     then GetItem KEY#<hash> for lastUsedAt; by hash the other way round;
//   - list an owner's keys: Query gsi1 on OWNER#<owner>, newest first, with a
//     signed, opaque cursor;
//   - usage history: the usage consumer (internal/usage) reads every change
//     of a hot item from the table's stream and adds what it did to the
//     key's day (RecordUsage), exactly once by useq, then bumps the
//     generation of the owner's day. A key's usage (Usage) is a
//     BatchGetItem of its days, and its hot item for the current day; an
//     owner's (OwnerUsage) one Query of its days, whose cached totals stand
//     while their generation has not moved, and one Query of the keys' days
//     of each day that moved; an owner's usage per key (OwnerKeyUsage) one
//     Query per page;
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
//   - token exchanges per key and minute: one conditional UpdateItem
//     (ADD n, below the bound) on TOKENX#<keyId> / <minute> per exchange
//     (CountTokenExchange);
//   - scheduled lifecycle work: Query gsi2 on each DUE#<shard> for
//     gsi2sk < now (never a scan), then strongly consistent BatchGetItems of
//     those keys' record items and of their hot items (for their last use);
//     each step is one transaction conditional on the record's version and
//     gsi2sk being as read (see Advance);
//   - rotation: one transaction that creates the new key (its two items)
//     and sets the old key's nextKeyId and expiresAt, conditional on the old
//     key being unchanged, enabled, unexpired and not rotated (see Rotate).
//
// # Indexes
//
// gsi1 lists an owner's keys newest first and carries the key's settings;
// gsi2 is the schedule below and carries keys only. Both index record
// items, which a verification never writes, and the hot item has no index
// key, so a verification writes the table and no index; a listing (List)
// has no lastUsedAt, while Get does. The hot item is addressed by the key's
// hash, so the authorizer reaches it in one request.
//
// Creating a key writes its two items in one transaction, each conditional
// on not existing, so a create never overwrites anything. Items past their
// retention carry ttl and are deleted by DynamoDB's TTL.
//
// # The schedule (gsi2)
//
// A key's record item is on the schedule while it has lifecycle work ahead: gsi2pk is
// one of DueShards fixed partitions chosen by a hash of the id (spreading
// keys that fall due together), gsi2sk its next due time in zero-padded Unix
// ms and its id. Create, Update and Rotate put a key due at once, so the
// rotator's next run plans it with its own settings (expiry notice, maximum
// age, idle days) and sets its next due time; the run advances it after each
// step (at most 30 days ahead) and takes it off the schedule (removing
// gsi2pk/gsi2sk) once it is revoked or expired. Update also
// removes the ttl of both items, which the run sets again if the key is
// still expired. An expired key gets ttl = expiry + retention on both of
// its items, a revoked key ttl = revocation + retention, so both go
// together.
//
// Errors are fault errors: NotFound, Conflict (a conditional write lost),
// PreconditionFailed (a version did not match), Throttled and Unavailable.
package store
