package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/MicahParks/jwkset"
)

// The asymmetric algorithms a JWK set can verify. The LMS signs its JWT
// cookie pair with RS512; ES256 is there for a set that rotates to EC.
var (
	rsaAlgs = []string{"RS256", "RS384", "RS512"}
	ecAlgs  = []string{"ES256"}
)

// publicKey is one verification key of the JWK set, pinned to the
// algorithms it may verify: an RSA key never checks an ES256 token, and no
// public key ever checks an HS256 one.
type publicKey struct {
	kid  string
	algs []string
	key  any // *rsa.PublicKey or *ecdsa.PublicKey
}

// parseJWKSet reads a JSON Web Key Set (RFC 7517), as the LMS publishes its
// JWT_PUBLIC_SIGNING_JWK_SET. Keys for encryption (use "enc"), keys whose
// key_ops exclude "verify", and key types or algorithms we do not verify
// are skipped. A symmetric key or private key material is an error: this is
// the public set, and the HS256 secret has its own setting. So is a set
// with no usable key.
func parseJWKSet(raw string) ([]publicKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return nil, fmt.Errorf("JWK set is not valid JSON: %w", err)
	}
	var keys []publicKey
	for i, m := range set.Keys {
		name := fmt.Sprintf("key %d", i)
		if m.KID != "" {
			name = fmt.Sprintf("key %d (kid %q)", i, m.KID)
		}
		k, use, err := parseJWK(m)
		if err != nil {
			return nil, fmt.Errorf("JWK set: %s: %w", name, err)
		}
		if use {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWK set holds no signature verification key (RSA for RS256/RS384/RS512, or EC P-256 for ES256)")
	}
	return keys, nil
}

// parseJWK turns one key of the set into a publicKey; use is false for a
// key the verifier has no use for.
func parseJWK(m jwkset.JWKMarshal) (k publicKey, use bool, err error) {
	if m.USE == jwkset.UseEnc {
		return publicKey{}, false, nil
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return publicKey{}, false, nil
	}
	switch m.KTY {
	case jwkset.KtyOct:
		return publicKey{}, false, errors.New("a symmetric key (kty oct) does not belong in the public JWK set; the HS256 secret is set on its own")
	case jwkset.KtyRSA, jwkset.KtyEC:
	default:
		return publicKey{}, false, nil // OKP and others: not an algorithm we verify
	}
	if m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 {
		return publicKey{}, false, errors.New("holds private key material; give the public JWK set (JWT_PUBLIC_SIGNING_JWK_SET), never the private one")
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return publicKey{}, false, err
	}
	k = publicKey{kid: m.KID, key: jwk.Key()}
	switch pub := jwk.Key().(type) {
	case *rsa.PublicKey:
		k.algs = rsaAlgs
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return publicKey{}, false, nil // ES384/ES512 are not accepted
		}
		k.algs = ecAlgs
	default:
		return publicKey{}, false, fmt.Errorf("unexpected key type %T", pub)
	}
	if m.ALG != "" {
		alg := string(m.ALG)
		if !slices.Contains(rsaAlgs, alg) && !slices.Contains(ecAlgs, alg) {
			return publicKey{}, false, nil // PS256, RSA-OAEP, …: not for the tokens we accept
		}
		if !slices.Contains(k.algs, alg) {
			return publicKey{}, false, fmt.Errorf("alg %s does not fit a %s key", alg, m.KTY)
		}
		k.algs = []string{alg}
	}
	return k, true, nil
}
