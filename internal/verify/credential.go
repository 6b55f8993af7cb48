package verify

import "strings"

// Credential finds the key a request carries, in this order: the x-api-key
// header (any case), an Authorization: Bearer header (scheme in any case),
// then the query parameter named param (when param is not ""). bearer
// reports that it came from Authorization, where an access token may sit
// instead of a key.
func Credential(headers, query map[string]string, param string) (cred string, bearer bool) {
	var auth string
	for name, value := range headers {
		switch {
		case strings.EqualFold(name, "x-api-key"):
			if v := strings.TrimSpace(value); v != "" {
				return v, false
			}
		case strings.EqualFold(name, "authorization"):
			auth = value
		}
	}
	if c, ok := BearerToken(auth); ok {
		return c, true
	}
	if param != "" {
		if v := strings.TrimSpace(query[param]); v != "" {
			return v, false
		}
	}
	return "", false
}

// BearerToken returns the credential of an "Authorization: Bearer <cred>"
// value (the scheme in any case).
func BearerToken(auth string) (string, bool) {
	const scheme = "bearer "
	auth = strings.TrimSpace(auth)
	if len(auth) <= len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) {
		return "", false
	}
	c := strings.TrimSpace(auth[len(scheme):])
	return c, c != ""
}

// Header returns the value of a header, its name matched in any case.
func Header(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for n, v := range headers {
		if strings.EqualFold(n, name) {
			return v
		}
	}
	return ""
}
