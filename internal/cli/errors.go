// Package cli is the operator CLI's client of the onboarding API: it sends
// requests (to the handler in this process or, SigV4-signed, to a deployed
// stack), turns answers into errors with exit codes, builds request bodies
// from flags, and prints answers as tables or JSON.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Exit codes of every certferry command (README "CLI").
const (
	ExitOK     = 0
	ExitFailed = 1 // a local failure: configuration, credentials, network, files
	ExitUsage  = 2 // bad command line: unknown command or flag, missing argument
	ExitClient = 3 // the API refused the request (4xx): fix the request
	ExitServer = 4 // the API or a handler failed (5xx, or a handler error): retry or read the logs
)

// UsageError is a bad command line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// APIError is an answer of 400 or more, with the API's error body
// ({"error": {"code", "message", "field"?}}) when it had one.
type APIError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
	Field        string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ": " + msg
	if e.Field != "" && !strings.HasPrefix(msg, e.Field+":") {
		s += " (field " + e.Field + ")"
	}
	return s
}

// NewAPIError reads an error answer's body.
func NewAPIError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var eb struct {
		Error struct{ Code, Message, Field string } `json:"error"`
		// API Gateway's own answers ({"message": "..."}, e.g. 403
		// Missing Authentication Token or a signature mismatch).
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message, e.Field = eb.Error.Code, eb.Error.Message, eb.Error.Field
		if e.Message == "" {
			e.Message = eb.Message
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	return e
}

// HandlerError is an error a handler returned (Lambda would retry the
// event or answer 502).
type HandlerError struct{ Err error }

func (e *HandlerError) Error() string { return e.Err.Error() }
func (e *HandlerError) Unwrap() error { return e.Err }

// ExitCode maps an error to the process's exit code.
func ExitCode(err error) int {
	var ue *UsageError
	var ae *APIError
	var he *HandlerError
	var coder interface{ ExitCode() int }
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &coder):
		return coder.ExitCode()
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ae) && ae.Status >= 500:
		return ExitServer
	case errors.As(err, &ae) && ae.Status >= 400:
		return ExitClient
	case errors.As(err, &he):
		return ExitServer
	}
	return ExitFailed
}
