// Package budget keeps streamgate's local model of an account's rate-limit
// budget, so that requests are admitted only when the provider would accept
// them, and streams are not cut off mid-answer by an exhausted output
// budget.
//
// # Keys and dimensions
//
// A Key names one budget: (provider, API key fingerprint, model class). It
// never holds an API key, only fingerprint.Of(key). Each key has one bucket
// per ratelimit.Dimension (requests, input tokens, output tokens, combined
// tokens, priority tiers). A Cost is an amount per dimension; the caller
// decides what a request costs in each, e.g. 1 request, the estimated input
// tokens, and for the combined Tokens dimension input plus output.
//
// # Buckets
//
// Each (key, dimension) bucket has:
//
//   - limit: the capacity, learned from response headers (Observe) or
//     configured (SetLimits); possibly unknown. A dimension whose limit is
//     unknown does not constrain admission.
//   - level: the predicted server-side remaining count. It refills
//     continuously at limit/window per unit of time (the window is
//     Store-wide: one minute by default, shorter for a time-scaled
//     simulator), and never exceeds the limit. It may go negative when usage
//     exceeds what was reserved; the debt refills like any deficit.
//   - held: output reserved for streams in flight but not yet produced.
//
// A dimension that becomes known starts full, less what the open
// reservations have charged and consumed in it.
//
// # Reservations
//
// A request's life is reserve, consume, then settle or cancel:
//
//   - Reserve(charge, hold) admits the request if, in every dimension with a
//     known limit, level - held >= charge + hold. The charge (requests and
//     input tokens, which the server charges when the request starts) is
//     taken from the level at once; the hold (output tokens, which the
//     server charges live as they are produced) is added to held. When the
//     request does not fit, nothing changes and the Result says how long
//     refill would take (Wait), which dimension blocked (Binding) and whether
//     refill alone cannot help because in-flight holds fill the bucket
//     (InFlight). A cost above a limit can never fit: ErrExceedsLimit.
//   - Consume(d, n) charges n produced units: level -= n, and the
//     reservation's remaining hold in d (and held) drop by min(n, hold).
//     Production beyond the hold is still charged to the level.
//   - Settle(actual) ends the reservation with its real usage: per
//     dimension the difference between actual and what was charged and
//     consumed is charged or refunded, and the remaining hold is released.
//   - Cancel() ends the reservation of a request that never reached the
//     upstream: the charge is refunded and the hold released. Consumed
//     amounts stay charged: those tokens were really produced.
//
// Every reservation ends in exactly one of Settle or Cancel; Budget.Open
// counts the ones that have not, so tests can prove nothing leaks.
//
// # Leases
//
// A reservation whose owner dies (a killed process sharing a Redis store)
// must not hold budget forever. Each reservation has a lease of MaxLease
// (Store-wide, ten minutes by default) from the last time it was touched:
// Reserve, Consume and Observe with its id renew it. Once a lease runs out
// the store drops the reservation: its hold is released, its charges and
// consumed amounts stay, and Settle or Cancel of it return
// ErrUnknownReservation. Stores drop expired reservations lazily, on the
// next operation on the key.
//
// # Reconciling with the server: Observe
//
// Every response carries the server's view of the budget in its rate-limit
// headers, parsed into a ratelimit.Snapshot. Observe learns each reported
// limit (a learned limit outranks a configured one) and then adopts each
// reported remaining count R, carried forward by refill from the snapshot's
// time to the key's latest time, with two corrections:
//
//   - Rounding: Anthropic rounds token counts to the nearest thousand, so
//     the true value lies within R ± g/2 (g = Bucket.Granularity).
//   - Requests in flight: the open reservations whose own response has not
//     yet been observed ("unseen") have been charged locally, but the
//     snapshot may or may not include them, depending on whether they
//     reached the server before the response carrying it was produced. Let
//     U be the sum of their charges. (The reservation whose response carries
//     the snapshot is included in it, and is marked seen.)
//
// So without other consumers the local level L should lie in the band
// [R - g/2 - U, R + g/2]. Inside the band nothing changes. Above it, someone
// else is using the key (another process, a console user): L becomes R.
// Below it, we charged more than the server did (estimates above actual
// usage, a limit raised): L is raised to R - g/2 - U, the most that is safe.
//
// Worked example: an input-token limit of 60,000 per minute (refill 1,000
// per second), local level 40,000. Reservation A (charge 5,000) and B
// (charge 8,000) are open and unseen. A's response arrives with
// "remaining 30000" (true value 29,500..30,500): 40,000 is above the band,
// another consumer has been at work, so the level becomes 30,000. Had it
// said "remaining 52000", the band would be [52,000 - 500 - 8,000, 52,500]
// = [43,500, 52,500] (B is unseen, A is the snapshot's own): the level is
// raised from 40,000 to 43,500, leaving room for B's charge in case the
// server has not counted it yet. "remaining 45000" gives the band
// [36,500, 45,500], which contains 40,000: no change.
//
// Snapshots can arrive out of order. One older than the last snapshot
// applied to the key still teaches limits and marks its reservation seen,
// but does not move levels. A remaining count whose limit is unknown is
// ignored (without a limit there is no refill rate).
//
// # Stores
//
// A Store holds the state of many keys; each method is one atomic operation
// on one key with plain values in and out, so a Store can live in another
// process. Memory is the in-process Store; a Redis Store lets many
// processes share one key's budget. Package budgettest holds the
// conformance suite every Store passes. Budget is the front end: it reads
// the clock, generates reservation ids and returns Reservation handles.
package budget
