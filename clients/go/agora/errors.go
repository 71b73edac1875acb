package agora

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo.domain of every Agora error.
const Domain = "agora.v1"

// FieldViolation is one entry of a google.rpc.BadRequest detail: the path
// of a field at fault (such as "slots[0].resources.cpus") and what is wrong.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a call the broker refused, or that did not reach it. Every
// method of Frontend returns its errors as *Error (a search for the leader
// that gave up returns *NoLeaderError, which unwraps to one); use
// errors.As to read it:
//
//	var failed *agora.Error
//	if errors.As(err, &failed) && failed.Reason == "QUOTA_EXCEEDED" { ... }
//
// It also answers status.Code(err) and status.Convert(err) with its code.
type Error struct {
	// Code is the canonical gRPC status code.
	Code codes.Code
	// Message is the broker's message: a sentence saying what to fix.
	Message string
	// Reason is the google.rpc.ErrorInfo reason of domain "agora.v1": an
	// agora.v1.ErrorReason name such as "INVALID_FIELD", or "" when the
	// status carries none (errors.proto lists those). Treat a reason you
	// do not know by its code.
	Reason string
	// Metadata holds the ErrorInfo facts, such as {"field": "slots"} or
	// {"leader": "http://10.0.0.2:50051"}; never nil.
	Metadata map[string]string
	// FieldViolations are those of a google.rpc.BadRequest detail.
	FieldViolations []FieldViolation

	// cause is the context error behind a CANCELLED or DEADLINE_EXCEEDED
	// that the caller's context, not the broker, decided.
	cause error
}

// Unwrap is the context's error (context.Canceled or
// context.DeadlineExceeded) when the caller's context ended the call, so
// that errors.Is(err, context.DeadlineExceeded) holds; nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// Error renders "CODE (REASON): message", or "CODE: message" without a
// reason; the code is gRPC's name in capitals, such as INVALID_ARGUMENT.
func (e *Error) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s: %s", codeName(e.Code), e.Message)
	}
	return fmt.Sprintf("%s (%s): %s", codeName(e.Code), e.Reason, e.Message)
}

// GRPCStatus makes status.Code(err), status.Convert(err) and
// status.FromError(err) see the error's code and message.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// Field is the path of the field at fault for INVALID_ARGUMENT (such as
// "launches[0].task.id"), when the broker named one; "" otherwise.
func (e *Error) Field() string {
	if field := e.Metadata["field"]; field != "" {
		return field
	}
	if len(e.FieldViolations) > 0 {
		return e.FieldViolations[0].Field
	}
	return ""
}

// Leader is the leader's URL when a standby replica refused the call
// (UNAVAILABLE, reason NOT_READY, metadata "leader"); "" otherwise.
func (e *Error) Leader() string {
	if e.Code != codes.Unavailable || e.Reason != "NOT_READY" {
		return ""
	}
	return e.Metadata["leader"]
}

// Unavailable tells whether the broker is away rather than refusing the
// call: a standby, restarting, not subscribed to Mesos, or unreachable. A
// call failing so may succeed later; repeat it only if that is safe
// (reads, Acknowledge, Kill, Hold, Acquire with a RequestID; not Launch).
func (e *Error) Unavailable() bool {
	return e.Code == codes.Unavailable
}

// codeName is the gRPC code's canonical name: codes.Code.String() says
// "InvalidArgument", the protocol and the other clients INVALID_ARGUMENT.
func codeName(code codes.Code) string {
	switch code {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range code.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// asError converts what a gRPC call returned into an *Error: the status
// code and message, and the ErrorInfo and BadRequest details found in the
// grpc-status-details-bin trailer. A context's own cancellation or deadline
// becomes CANCELLED or DEADLINE_EXCEEDED. nil stays nil, and an *Error (or
// an error wrapping one) is returned as it is.
func asError(err error) error {
	if err == nil {
		return nil
	}
	var known *Error
	if errors.As(err, &known) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Code: codes.Canceled, Message: err.Error(), Metadata: map[string]string{}, cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: codes.DeadlineExceeded, Message: err.Error(), Metadata: map[string]string{}, cause: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: codes.Unknown, Message: err.Error(), Metadata: map[string]string{}}
	}
	return fromStatus(st)
}

// fromStatus reads code, message and details of a status.
func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}}
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.ErrorInfo:
			if detail.GetDomain() == Domain {
				e.Reason = detail.GetReason()
				for key, value := range detail.GetMetadata() {
					e.Metadata[key] = value
				}
			}
		case *errdetails.BadRequest:
			for _, v := range detail.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		}
	}
	return e
}

// NoLeaderError says that no endpoint led and answered before the failover
// deadline. It unwraps to an *Error with code UNAVAILABLE.
type NoLeaderError struct {
	// Within is the deadline the search had (Failover.Deadline).
	Within time.Duration
	// Tried maps each endpoint to the last error it answered.
	Tried map[string]*Error
}

// Error lists the endpoints tried and what each answered.
func (e *NoLeaderError) Error() string {
	return e.Unwrap().Error()
}

// Unwrap is the UNAVAILABLE *Error the search ends with.
func (e *NoLeaderError) Unwrap() error {
	addresses := make([]string, 0, len(e.Tried))
	for address := range e.Tried {
		addresses = append(addresses, address)
	}
	sort.Strings(addresses)
	listed := make([]string, 0, len(addresses))
	for _, address := range addresses {
		listed = append(listed, fmt.Sprintf("%s (%v)", address, e.Tried[address]))
	}
	tried := strings.Join(listed, "; ")
	if tried == "" {
		tried = "nothing"
	}
	return &Error{
		Code:     codes.Unavailable,
		Message:  fmt.Sprintf("no Agora leader answered within %v; tried %s", e.Within, tried),
		Metadata: map[string]string{},
	}
}
