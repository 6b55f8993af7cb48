package smoke

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/leaktest"
)

// A refusal the smoke test expected but did not get quotes the upstream's
// answer, which an echo upstream fills with the request's headers: no
// part of the key survives into the message, wherever the cut falls.
func TestAQuotedAnswerHoldsNoPartOfAKey(t *testing.T) {
	f, err := apikey.NewFormat("")
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.Generate(apikey.Secret, apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	for pad := 150; pad <= 200; pad += 5 {
		body := `{"headers":{` + strings.Repeat(" ", pad) + `"X-Api-Key":["` + k.Plaintext + `"]}}`
		leaktest.Check(t, map[string]string{"clipped answer": clip([]byte(body))}, k.Plaintext)
	}
}
