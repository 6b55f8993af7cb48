// Package browser holds the console's end-to-end tests: headless Chromium
// (Debian's chromium, driven with chromedp) against `keygate console`
// pointed at the local stack on DynamoDB Local, as an admin uses it. It has
// no code of its own; `make test-browser` runs it (`make test` leaves it
// out to stay under ten minutes), and the tests save screenshots under
// build/console/.
package browser
