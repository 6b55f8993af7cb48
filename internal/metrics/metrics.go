// Package metrics writes CloudWatch metrics in the Embedded Metric Format:
// one JSON line per verification on stdout, which the Lambda log pipeline
// turns into metrics. No metrics API is called, so emitting costs no round
// trip and cannot fail a request.
package metrics

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of keygate's metrics.
const Namespace = "keygate"

// The metric names, for alarms and dashboards.
const (
	Verifications = "Verifications" // count, by Outcome (allow or a reason code)
	Latency       = "Latency"       // milliseconds per verification
	CacheHits     = "CacheHits"     // 1 when the in-process cache held the key
	DynamoDBCalls = "DynamoDBCalls" // round trips per verification
	// OutcomeDimension names the dimension; the empty dimension set is
	// emitted too, for totals.
	OutcomeDimension = "Outcome"

	// The usage consumer's metrics, one line per batch: stream records
	// read, usage changes among them, and records it could not read and
	// skipped (an alarm watches these).
	UsageRecords = "UsageRecords"
	UsageChanges = "UsageChanges"
	UsageSkipped = "UsageSkipped"
)

// EMF writes metric lines to a writer (os.Stdout in Lambda).
type EMF struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// New returns an EMF writer on w.
func New(w io.Writer) *EMF { return &EMF{w: w, buf: make([]byte, 0, 512)} }

// Verification records one verification. outcome is "allow" or a reason
// code; it is written as is, so it must not hold user input.
func (m *EMF) Verification(at time.Time, outcome string, latency time.Duration, cacheHit bool, calls int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.buf[:0]
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, at.UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":"`+Namespace+`","Dimensions":[["`+OutcomeDimension+`"],[]],"Metrics":[`+
		`{"Name":"`+Verifications+`","Unit":"Count"},{"Name":"`+Latency+`","Unit":"Milliseconds"},`+
		`{"Name":"`+CacheHits+`","Unit":"Count"},{"Name":"`+DynamoDBCalls+`","Unit":"Count"}]}]},"`+OutcomeDimension+`":"`...)
	b = append(b, outcome...)
	b = append(b, `","`+Verifications+`":1,"`+Latency+`":`...)
	b = strconv.AppendFloat(b, float64(latency.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"`+CacheHits+`":`...)
	if cacheHit {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, `,"`+DynamoDBCalls+`":`...)
	b = strconv.AppendInt(b, int64(calls), 10)
	b = append(b, "}\n"...)
	m.buf = b
	_, _ = m.w.Write(b)
}

// UsageBatch records one batch of the usage consumer.
func (m *EMF) UsageBatch(at time.Time, records, changes, skipped int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.buf[:0]
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, at.UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":"`+Namespace+`","Dimensions":[[]],"Metrics":[`+
		`{"Name":"`+UsageRecords+`","Unit":"Count"},{"Name":"`+UsageChanges+`","Unit":"Count"},`+
		`{"Name":"`+UsageSkipped+`","Unit":"Count"}]}]},"`+UsageRecords+`":`...)
	b = strconv.AppendInt(b, int64(records), 10)
	b = append(b, `,"`+UsageChanges+`":`...)
	b = strconv.AppendInt(b, int64(changes), 10)
	b = append(b, `,"`+UsageSkipped+`":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	b = append(b, "}\n"...)
	m.buf = b
	_, _ = m.w.Write(b)
}
