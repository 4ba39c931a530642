package minihttp

// HTTP methods and status codes used by the demo's API and this server
// (the values of RFC 9110).
const (
	MethodGet  = "GET"
	MethodHead = "HEAD"
	MethodPost = "POST"

	StatusContinue                    = 100
	StatusOK                          = 200
	StatusNoContent                   = 204
	StatusMovedPermanently            = 301
	StatusNotModified                 = 304
	StatusBadRequest                  = 400
	StatusForbidden                   = 403
	StatusNotFound                    = 404
	StatusMethodNotAllowed            = 405
	StatusRequestEntityTooLarge       = 413
	StatusUnsupportedMediaType        = 415
	StatusExpectationFailed           = 417
	StatusMisdirectedRequest          = 421
	StatusTooManyRequests             = 429
	StatusRequestHeaderFieldsTooLarge = 431
	StatusInternalServerError         = 500
	StatusNotImplemented              = 501
	StatusServiceUnavailable          = 503
	StatusHTTPVersionNotSupported     = 505
	StatusInsufficientStorage         = 507
)

var statusText = map[int]string{
	StatusContinue:                    "Continue",
	StatusOK:                          "OK",
	StatusNoContent:                   "No Content",
	StatusMovedPermanently:            "Moved Permanently",
	StatusNotModified:                 "Not Modified",
	StatusBadRequest:                  "Bad Request",
	StatusForbidden:                   "Forbidden",
	StatusNotFound:                    "Not Found",
	StatusMethodNotAllowed:            "Method Not Allowed",
	StatusRequestEntityTooLarge:       "Request Entity Too Large",
	StatusUnsupportedMediaType:        "Unsupported Media Type",
	StatusExpectationFailed:           "Expectation Failed",
	StatusMisdirectedRequest:          "Misdirected Request",
	StatusTooManyRequests:             "Too Many Requests",
	StatusRequestHeaderFieldsTooLarge: "Request Header Fields Too Large",
	StatusInternalServerError:         "Internal Server Error",
	StatusNotImplemented:              "Not Implemented",
	StatusServiceUnavailable:          "Service Unavailable",
	StatusHTTPVersionNotSupported:     "HTTP Version Not Supported",
	StatusInsufficientStorage:         "Insufficient Storage",
}

// StatusText returns the reason phrase of code, or "" for a code this
// package does not name (the status line then carries the code alone,
// which RFC 9112 allows).
func StatusText(code int) string { return statusText[code] }

// bodyAllowed reports whether an answer with this status may carry a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != StatusNoContent && status != StatusNotModified
}
