// Package acmstandin holds the rig's ACM stand-ins: HTTP layers that sit
// between an AWS SDK client and the emulator (moto_server) and do what ACM
// documents where the emulator is silent or loose. Chain re-issues moto's
// certificates from one local CA so each chain issues its leaf; Renewals is
// RenewCertificate, which moto lacks. Both are func(http.Handler)
// http.Handler layers: mount them in a proxy in front of moto (localenv.Proxy
// for the demo and `certferry local up`, testkit's FaultProxy.Use for the
// test rig) so every process pointed at the proxy sees the same ACM, or wrap
// one SDK client's transport with Transport. Production code never imports
// this package.
//
// Order: Chain outside Renewals (Chain(Renewals(moto))), so a renewed
// certificate is re-issued by the same local CA as every other one.
package acmstandin

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Layer is one stand-in around the next handler (the emulator or the next
// layer).
type Layer = func(http.Handler) http.Handler

// Target is the X-Amz-Target of an ACM operation.
func Target(op string) string { return "CertificateManager." + op }

// Transport runs layers (the first outermost) in front of next, an SDK
// client's transport: the stand-ins for one process only.
func Transport(next http.RoundTripper, layers ...Layer) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	for i := len(layers) - 1; i >= 0; i-- {
		h = layers[i](h)
	}
	return roundTripper{h}
}

type roundTripper struct{ h http.Handler }

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// readBody reads a request's body and puts it back for the next handler.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// intercept reads the JSON request of an ACM operation among ops into in
// and returns the operation's name. Any other operation it hands to next
// unchanged; a body it cannot read or decode it answers itself (400, or
// SerializationException as ACM's JSON protocol does). Either way it then
// reports false.
func intercept(w http.ResponseWriter, req *http.Request, next http.Handler, in any, ops ...string) (string, bool) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "CertificateManager.")
	if !slices.Contains(ops, op) {
		next.ServeHTTP(w, req)
		return "", false
	}
	raw, err := readBody(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", false
	}
	if err := json.Unmarshal(raw, in); err != nil {
		writeError(w, "SerializationException", "request body is not JSON")
		return "", false
	}
	return op, true
}

// describeCert asks next for arn's DescribeCertificate answer and returns its
// Certificate. On an error answer it has passed the emulator's answer on
// unchanged (ResourceNotFoundException, InvalidArnException, validation),
// on one it cannot decode answered 502 naming the stand-in; either way it
// reports false.
func describeCert(w http.ResponseWriter, req *http.Request, next http.Handler, arn, who string) (map[string]any, bool) {
	rec := call(next, sub(req, "DescribeCertificate", map[string]string{"CertificateArn": arn}))
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return nil, false
	}
	var desc struct{ Certificate map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &desc); err != nil || desc.Certificate == nil {
		http.Error(w, "ACM "+who+" stand-in: decode DescribeCertificate answer", http.StatusBadGateway)
		return nil, false
	}
	return desc.Certificate, true
}

// acmEvent is an EventBridge event from ACM about arn ("Amazon EventBridge
// support for ACM", ACM User Guide: source aws.acm, the certificate in
// resources, account and region those of the certificate).
func acmEvent(arn, detailType string, at time.Time, detail map[string]any) ([]byte, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return nil, fmt.Errorf("malformed ARN %s", arn)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return json.Marshal(map[string]any{
		"version": "0", "id": fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]),
		"detail-type": detailType, "source": "aws.acm",
		"account": parts[4], "time": at.Format(time.RFC3339), "region": parts[3],
		"resources": []string{arn}, "detail": detail,
	})
}

// offer hands ev to events unless the buffer is full (EventBridge is best
// effort too: a full buffer drops).
func offer(events chan<- []byte, ev []byte) {
	select {
	case events <- ev:
	default:
	}
}

// Drain returns the events a stand-in has emitted so far (what its Events
// channel holds), without waiting for more.
func Drain(events <-chan []byte) [][]byte {
	var out [][]byte
	for {
		select {
		case ev := <-events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// call runs next on req and returns what it answered.
func call(next http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, req)
	return rec
}

// callJSON runs next on req and decodes its successful JSON answer. On
// anything else it has answered w itself (the emulator's error unchanged,
// or 502 naming the stand-in and operation) and reports false.
func callJSON(next http.Handler, w http.ResponseWriter, req *http.Request, who, op string) (*httptest.ResponseRecorder, map[string]any, bool) {
	rec := call(next, req)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return rec, nil, false
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		http.Error(w, fmt.Sprintf("ACM %s stand-in: decode %s answer: %v", who, op, err), http.StatusBadGateway)
		return rec, nil, false
	}
	return rec, body, true
}

// sub is a request for another ACM operation on the same endpoint, with the
// original's headers (moto does not check signatures).
func sub(req *http.Request, op string, body any) *http.Request {
	b, _ := json.Marshal(body)
	r := req.Clone(req.Context())
	r.Header.Set("X-Amz-Target", Target(op))
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return r
}

// copyResponse writes rec to w unchanged.
func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// writeJSON answers in ACM's protocol (JSON 1.1).
func writeJSON(w http.ResponseWriter, status int, header http.Header, body []byte) {
	for k, v := range header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers an ACM error as AWS does: HTTP 400, the code in
// X-Amzn-ErrorType and __type.
func writeError(w http.ResponseWriter, code, message string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	writeJSON(w, http.StatusBadRequest, nil, b)
}
