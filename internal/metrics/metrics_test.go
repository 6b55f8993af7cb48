package metrics_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/metrics"
)

// CloudWatch only turns a line into metrics if it is one JSON object whose
// _aws directive names every metric and dimension that the object holds.
func TestVerificationLineIsEMF(t *testing.T) {
	var b bytes.Buffer
	m := metrics.New(&b)
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m.Verification(at, "rate_limited", 1500*time.Microsecond, true, 1)
	m.Verification(at, "allow", time.Millisecond, false, 0)
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %s", len(lines), b.String())
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Outcome       string
		Verifications float64
		Latency       float64
		CacheHits     float64
		DynamoDBCalls float64
	}
	if err := json.Unmarshal(lines[0], &doc); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if doc.AWS.Timestamp != at.UnixMilli() || d.Namespace != "keygate" || len(d.Metrics) != 4 ||
		d.Dimensions[0][0] != "Outcome" || doc.Outcome != "rate_limited" || doc.Verifications != 1 ||
		doc.Latency != 1.5 || doc.CacheHits != 1 || doc.DynamoDBCalls != 1 {
		t.Fatalf("line: %+v", doc)
	}
	var raw map[string]any
	_ = json.Unmarshal(lines[0], &raw)
	for _, metric := range d.Metrics {
		if _, ok := raw[metric.Name]; !ok {
			t.Errorf("metric %s is declared but has no value", metric.Name)
		}
	}
}

// The usage consumer's line is EMF too: every metric it declares has a
// value, and the values are the batch's.
func TestUsageBatchLineIsEMF(t *testing.T) {
	var b bytes.Buffer
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	metrics.New(&b).UsageBatch(at, 100, 97, 1)
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace string
				Metrics   []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		UsageRecords, UsageChanges, UsageSkipped float64
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc.UsageRecords != 100 || doc.UsageChanges != 97 || doc.UsageSkipped != 1 {
		t.Fatalf("line %s: %+v %v", b.String(), doc, err)
	}
	var raw map[string]any
	_ = json.Unmarshal(b.Bytes(), &raw)
	for _, metric := range doc.AWS.CloudWatchMetrics[0].Metrics {
		if _, ok := raw[metric.Name]; !ok {
			t.Errorf("metric %s is declared but has no value", metric.Name)
		}
	}
}
