package lms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fulfill/internal/catalog"
)

// Paths of the LMS APIs other than enrollment. These are authenticated
// with the OAuth client's JWT when one is configured, else with
// X-Edx-Api-Key.
const (
	CommerceCoursesPath = "/api/commerce/v1/courses/"
	CreditCoursesPath   = "/api/credit/v1/courses/"
	EntitlementsPath    = "/api/entitlements/v1/entitlements/"
)

// PublishedMode is one course mode as the LMS's commerce API stores it
// (its CourseModeSerializer), with the SKU that sells it here.
type PublishedMode struct {
	Name     string `json:"name"`
	Currency string `json:"currency"`
	// Price is in whole major units: the LMS declares it an IntegerField
	// and refuses 49.99; Otto sends int(price).
	Price   int64      `json:"price"`
	SKU     string     `json:"sku"`
	BulkSKU *string    `json:"bulk_sku"`
	Expires *time.Time `json:"expires"`
	// AndroidSKU and IOSSKU are the SKUs of the verified mode's mobile
	// in-app purchases; null when there are none.
	AndroidSKU *string `json:"android_sku"`
	IOSSKU     *string `json:"ios_sku"`
}

// PublishedCourse is the body of PUT /api/commerce/v1/courses/{id}/ (Otto's
// LMSPublisher).
type PublishedCourse struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name"`
	VerificationDeadline *time.Time      `json:"verification_deadline"`
	Modes                []PublishedMode `json:"modes"`
}

// HasCredit reports whether the course sells a credit mode, which the LMS
// must know as a credit course before the mode is published.
func (pc PublishedCourse) HasCredit() bool {
	for _, m := range pc.Modes {
		if m.Name == catalog.CertCredit {
			return true
		}
	}
	return false
}

// CreditCourse is the body of PUT /api/credit/v1/courses/{id}/.
type CreditCourse struct {
	CourseKey string `json:"course_key"`
	Enabled   bool   `json:"enabled"`
}

// PublishCourse sends a course's modes and SKUs to the LMS, as Otto's
// LMSPublisher: a course with a credit mode is first made a credit course
// (PublishCreditCourse), and a failure there publishes nothing. The error,
// an *Error, carries the LMS's message.
func (c *Client) PublishCourse(ctx context.Context, pc PublishedCourse) error {
	if err := c.checkServiceConfig(CommerceCoursesPath); err != nil {
		return err
	}
	if pc.HasCredit() {
		if err := c.PublishCreditCourse(ctx, pc.ID); err != nil {
			return err
		}
	}
	body, err := json.Marshal(pc)
	if err != nil {
		return fmt.Errorf("encode course: %w", err)
	}
	_, err = c.service(ctx, http.MethodPut, c.baseURL+CommerceCoursesPath+url.PathEscape(pc.ID)+"/", body, "")
	return err
}

// PublishCreditCourse enables courseKey as a credit course in the LMS
// (its CreditCourseViewSet, which creates the course on a first PUT).
func (c *Client) PublishCreditCourse(ctx context.Context, courseKey string) error {
	if err := c.checkServiceConfig(CreditCoursesPath); err != nil {
		return err
	}
	body, err := json.Marshal(CreditCourse{CourseKey: courseKey, Enabled: true})
	if err != nil {
		return fmt.Errorf("encode credit course: %w", err)
	}
	_, err = c.service(ctx, http.MethodPut, c.baseURL+CreditCoursesPath+url.PathEscape(courseKey)+"/", body, "")
	return err
}

// GetPublishedCourse reads back what the LMS holds for a course.
func (c *Client) GetPublishedCourse(ctx context.Context, id string) (PublishedCourse, error) {
	var pc PublishedCourse
	if err := c.checkServiceConfig(CommerceCoursesPath); err != nil {
		return pc, err
	}
	r, err := c.service(ctx, http.MethodGet, c.baseURL+CommerceCoursesPath+url.PathEscape(id)+"/", nil, "")
	if err != nil {
		return pc, err
	}
	if err := json.Unmarshal(r.body, &pc); err != nil {
		return pc, fmt.Errorf("decode course: %w", err)
	}
	return pc, nil
}

// EntitlementRequest is the body Otto's entitlement module posts.
type EntitlementRequest struct {
	User        string `json:"user"`
	CourseUUID  string `json:"course_uuid"`
	Mode        string `json:"mode"`
	OrderNumber string `json:"order_number"`
	EmailOptIn  bool   `json:"email_opt_in"`
}

// Entitlement is a course entitlement held by the LMS.
type Entitlement struct {
	UUID        string     `json:"uuid"`
	User        string     `json:"user"`
	CourseUUID  string     `json:"course_uuid"`
	Mode        string     `json:"mode"`
	OrderNumber string     `json:"order_number"`
	ExpiredAt   *time.Time `json:"expired_at"`
}

// CreateEntitlement grants an entitlement; the answer's uuid identifies it
// for revocation. The idempotency key lets the LMS answer a retried grant
// with the entitlement it already made.
func (c *Client) CreateEntitlement(ctx context.Context, req EntitlementRequest, idempotencyKey string) (Entitlement, error) {
	var e Entitlement
	if err := c.checkServiceConfig(EntitlementsPath); err != nil {
		return e, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return e, fmt.Errorf("encode entitlement: %w", err)
	}
	u := c.baseURL + EntitlementsPath
	r, err := c.service(ctx, http.MethodPost, u, body, idempotencyKey)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.UUID == "" {
		return e, &Error{Class: ClassServer, StatusCode: r.status, Message: "the LMS answered without an entitlement uuid", URL: u}
	}
	return e, nil
}

// DeleteEntitlement revokes an entitlement. One that is already gone (404)
// counts as revoked.
func (c *Client) DeleteEntitlement(ctx context.Context, uuid, idempotencyKey string) error {
	if err := c.checkServiceConfig(EntitlementsPath); err != nil {
		return err
	}
	_, err := c.service(ctx, http.MethodDelete, c.baseURL+EntitlementsPath+url.PathEscape(uuid)+"/", nil, idempotencyKey)
	var le *Error
	if errors.As(err, &le) && le.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}

// Publication is what Otto's LMSPublisher sends for a course: each mode by
// its LMS name, with its price in whole units (Otto's int(price), which
// truncates: 49.99 is published as 49), SKU, bulk (enrollment code) SKU and
// expiry. Professional modes are published without an expiry, as Otto
// does. android_sku and ios_sku are null: this catalog sells no mobile
// seats.
func Publication(c catalog.Course) PublishedCourse {
	pc := PublishedCourse{ID: c.ID, Name: c.Name, VerificationDeadline: c.VerificationDeadline, Modes: []PublishedMode{}}
	for _, s := range c.Seats {
		m := PublishedMode{Name: s.Mode(), Currency: s.Price.Currency, Price: wholeUnits(s.Price.String()), SKU: s.SKU, Expires: s.Expires}
		if s.BulkSKU != "" {
			bulk := s.BulkSKU
			m.BulkSKU = &bulk
		}
		if s.CertificateType == catalog.CertProfessional {
			m.Expires = nil
		}
		pc.Modes = append(pc.Modes, m)
	}
	return pc
}

// wholeUnits truncates a decimal amount ("49.99") toward zero to its whole
// major units (49), as Python's int() of a Decimal does.
func wholeUnits(decimal string) int64 {
	whole, _, _ := strings.Cut(decimal, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	return n
}

// Publish implements catalog.Publisher. A failure is a
// *catalog.PublishError with the LMS's own message, or, when no answer
// came, words saying so (the transport error is only its Cause).
func (c *Client) Publish(ctx context.Context, course catalog.Course) error {
	err := c.PublishCourse(ctx, Publication(course))
	if err == nil {
		return nil
	}
	msg := "the LMS could not be reached"
	var le *Error
	if errors.As(err, &le) && le.StatusCode != 0 && le.Message != "" {
		msg = le.Message
		if strings.Contains(le.URL, CreditCoursesPath) {
			msg = "the LMS did not take the course as a credit course: " + msg
		}
	} else if errors.As(err, &le) && le.Class == ClassConfiguration {
		msg = "the LMS is not configured on this service"
	}
	return &catalog.PublishError{Message: msg, Cause: err}
}
