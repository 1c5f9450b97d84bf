package bip324

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"

	"github.com/btcpipe/btcpipe/wire"
)

func fieldVal(t *testing.T, s string) *btcec.FieldVal {
	t.Helper()
	var f btcec.FieldVal
	f.SetByteSlice(unhex(t, s)) // Normalize reduces mod p
	f.Normalize()
	return &f
}

func fieldHex(f *btcec.FieldVal) string {
	b := f.Bytes()
	return hex.EncodeToString(b[:])
}

// TestEllswiftDecodeVectors checks btcec's XSwiftEC, the decoding our ECDH
// relies on, against every ellswift_decode vector (u and t taken mod p).
func TestEllswiftDecodeVectors(t *testing.T) {
	for i, v := range readCSV(t, "ellswift_decode_test_vectors.csv") {
		enc := unhex(t, v["ellswift"])
		x, err := ellswift.XSwiftEC(fieldVal(t, hex.EncodeToString(enc[:32])), fieldVal(t, hex.EncodeToString(enc[32:])))
		if err != nil {
			t.Errorf("vector %d (%s): %v", i, v["comment"], err)
			continue
		}
		if got, want := fieldHex(x), v["x"]; got != want {
			t.Errorf("vector %d (%s): got x %s, want %s", i, v["comment"], got, want)
		}
	}
}

// TestXSwiftECInvVectors checks btcec's XSwiftECInv, which key generation
// (ellswift.XElligatorSwift) uses, against every case of every
// xswiftec_inv vector, including the cases that must fail.
func TestXSwiftECInvVectors(t *testing.T) {
	n := 0
	for i, v := range readCSV(t, "xswiftec_inv_test_vectors.csv") {
		for c := range 8 {
			want := v["case"+strconv.Itoa(c)+"_t"]
			got := ellswift.XSwiftECInv(fieldVal(t, v["u"]), fieldVal(t, v["x"]), c)
			switch {
			case want == "" && got != nil:
				t.Errorf("vector %d case %d: got t %s, want none", i, c, fieldHex(got))
			case want != "" && got == nil:
				t.Errorf("vector %d case %d: got none, want %s", i, c, want)
			case want != "" && fieldHex(got) != want:
				t.Errorf("vector %d case %d: got t %s, want %s", i, c, fieldHex(got), want)
			}
			if want != "" { // and the encoding decodes back to x
				x, err := ellswift.XSwiftEC(fieldVal(t, v["u"]), fieldVal(t, want))
				if err != nil || fieldHex(x) != v["x"] {
					t.Errorf("vector %d case %d: XSwiftEC(u, t) = %v, %v, want %s", i, c, x, err, v["x"])
				}
			}
			n++
		}
	}
	if n != 8*32 {
		t.Errorf("checked %d cases, want %d", n, 8*32)
	}
}

// TestPacketEncodingVectors runs every packet_encoding vector through our
// key derivation and Sender (after in_idx earlier packets) and checks every
// intermediate value, then decrypts the ciphertext with the peer's Receiver.
func TestPacketEncodingVectors(t *testing.T) {
	for _, v := range readCSV(t, "packet_encoding_test_vectors.csv") {
		t.Run(v["in_idx"], func(t *testing.T) {
			privBytes := unhex(t, v["in_priv_ours"])
			priv, pub := btcec.PrivKeyFromBytes(privBytes)
			var ours, theirs [64]byte
			copy(ours[:], unhex(t, v["in_ellswift_ours"]))
			copy(theirs[:], unhex(t, v["in_ellswift_theirs"]))
			initiator := v["in_initiating"] == "1"

			if fmtX(pub) != v["mid_x_ours"] {
				t.Errorf("x_ours = %s, want %s", fmtX(pub), v["mid_x_ours"])
			}
			xt, err := ellswift.XSwiftEC(fieldVal(t, v["in_ellswift_theirs"][:64]), fieldVal(t, v["in_ellswift_theirs"][64:]))
			if err != nil || fieldHex(xt) != v["mid_x_theirs"] {
				t.Errorf("x_theirs = %v, %v, want %s", xt, err, v["mid_x_theirs"])
			}
			shared, err := ellswift.EllswiftECDHXOnly(theirs, priv)
			if err != nil || hex.EncodeToString(shared[:]) != v["mid_x_shared"] {
				t.Errorf("x_shared = %x, %v, want %s", shared, err, v["mid_x_shared"])
			}
			secret, err := ECDH(KeyPair{Priv: priv, Pub: ours}, theirs, initiator)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(secret[:]); got != v["mid_shared_secret"] {
				t.Errorf("shared secret = %s, want %s", got, v["mid_shared_secret"])
			}
			keys := DeriveKeys(secret, wire.Mainnet.Magic)
			for _, c := range []struct {
				name string
				got  []byte
			}{
				{"mid_initiator_l", keys.InitiatorL[:]},
				{"mid_initiator_p", keys.InitiatorP[:]},
				{"mid_responder_l", keys.ResponderL[:]},
				{"mid_responder_p", keys.ResponderP[:]},
				{"out_session_id", keys.SessionID[:]},
			} {
				if got := hex.EncodeToString(c.got); got != v[c.name] {
					t.Errorf("%s = %s, want %s", c.name, got, v[c.name])
				}
			}
			sendTerm, recvTerm := keys.Terminators(initiator)
			if got := hex.EncodeToString(sendTerm[:]); got != v["mid_send_garbage_terminator"] {
				t.Errorf("send terminator = %s, want %s", got, v["mid_send_garbage_terminator"])
			}
			if got := hex.EncodeToString(recvTerm[:]); got != v["mid_recv_garbage_terminator"] {
				t.Errorf("recv terminator = %s, want %s", got, v["mid_recv_garbage_terminator"])
			}
			if got := keys.SessionID.String(); got != v["out_session_id"] {
				t.Errorf("SessionID.String() = %s, want %s", got, v["out_session_id"])
			}

			idx, _ := strconv.Atoi(v["in_idx"])
			mult, _ := strconv.Atoi(v["in_multiply"])
			contents := bytes.Repeat(unhex(t, v["in_contents"]), mult)
			aad := unhex(t, v["in_aad"])
			ignore := v["in_ignore"] == "1"

			send, _ := keys.Ciphers(initiator)
			_, peerRecv := keys.Ciphers(!initiator) // the other end decrypts what we send
			peerRecv.SetMaxContents(MaxPacketContents)
			var pkt []byte
			for range idx {
				pkt = send.AppendPacket(pkt[:0], nil, nil, false)
				n, err := peerRecv.DecryptLength(pkt)
				if err != nil || n != 0 {
					t.Fatalf("earlier packet: length %d, %v", n, err)
				}
				if _, _, err := peerRecv.Open(pkt[LengthSize:], nil); err != nil {
					t.Fatalf("earlier packet: %v", err)
				}
			}
			pkt = send.AppendPacket(nil, contents, aad, ignore)
			if want := v["out_ciphertext"]; want != "" {
				if got := hex.EncodeToString(pkt); got != want {
					t.Errorf("ciphertext = %s, want %s", got, want)
				}
			}
			if want := v["out_ciphertext_endswith"]; want != "" {
				if got := hex.EncodeToString(pkt); !bytes.HasSuffix([]byte(got), []byte(want)) {
					t.Errorf("ciphertext ends %s, want suffix %s", got[max(0, len(got)-len(want)):], want)
				}
			}
			if len(pkt) != PacketLen(uint32(len(contents))) {
				t.Errorf("packet length %d, want %d", len(pkt), PacketLen(uint32(len(contents))))
			}
			n, err := peerRecv.DecryptLength(pkt)
			if err != nil || int(n) != len(contents) {
				t.Fatalf("DecryptLength = %d, %v, want %d", n, err, len(contents))
			}
			got, gotIgnore, err := peerRecv.Open(pkt[LengthSize:], aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, contents) || gotIgnore != ignore {
				t.Errorf("Open: %d bytes ignore=%v, want %d bytes ignore=%v", len(got), gotIgnore, len(contents), ignore)
			}
		})
	}
}

func fmtX(pub *btcec.PublicKey) string {
	b := pub.SerializeCompressed()
	return hex.EncodeToString(b[1:])
}
