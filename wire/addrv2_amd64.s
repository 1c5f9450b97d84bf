//go:build amd64 && !purego

#include "textflag.h"

// The layout of NetAddrV2 (TestNetAddrV2Layout checks it).
#define ADDR 0
#define SERVICES 32
#define TIME 40
#define PORT 44
#define NETWORK 46
#define ENTRY 48

// addrV2Window: what may be read of an entry.
#define WINDOW 65

// func addrV2Entries(p []byte, list []NetAddrV2, suspects *uint8) (off, j int)
//
// addrV2EntriesGo, instruction for instruction where it can be:
//   SI  &p[0]            R8  len(p) - WINDOW: the last offset an entry may start at
//   DI  &list[j]         R9  len(list)
//   BX  off              CX  j
//   DX  &p[off] (e)      R12 &e[i], i the offset of the network id (5 or 7)
//   R10 network id       R11 address length
//   R13 suspects so far  AX  scratch
TEXT ·addrV2Entries(SB), NOSPLIT, $0-72
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), R8
	SUBQ $WINDOW, R8
	MOVQ list_base+24(FP), DI
	MOVQ list_len+32(FP), R9
	XORQ BX, BX
	XORQ CX, CX
	XORL R13, R13

loop:
	CMPQ CX, R9
	JGE  done
	CMPQ BX, R8
	JGT  done
	LEAQ (SI)(BX*1), DX
	MOVBLZX 4(DX), AX        // services: a CompactSize
	CMPL AX, $0xfd
	JAE  services3
	MOVQ AX, SERVICES(DI)    // one byte
	MOVBLZX 5(DX), R10
	LEAQ 5(DX), R12
	JMP  address

services3:
	JNE  done                // 5 or 9 bytes: the careful path
	MOVWLZX 5(DX), AX
	CMPL AX, $0xfd
	JB   done                // not canonical: the careful path says so
	MOVQ AX, SERVICES(DI)
	MOVBLZX 7(DX), R10
	LEAQ 7(DX), R12

address:
	MOVBLZX 1(R12), R11      // the address's length
	TESTL R11, R11
	JZ   done
	LEAQ ·addrV2Lens(SB), AX
	MOVBLZX (AX)(R10*1), AX
	CMPL AX, R11
	JNE  done                // unknown network or wrong length: the careful path
	MOVL (DX), AX
	MOVL AX, TIME(DI)
	MOVB R10, NETWORK(DI)
	MOVWLZX 2(R12)(R11*1), AX
	ROLW $8, AX              // the port is big-endian
	MOVW AX, PORT(DI)

	// suspects |= addrV2Suspect[n<<8 | the address's first byte]
	ANDL $7, R10
	MOVL R10, AX
	SHLL $8, AX
	MOVBLZX 2(R12), DX
	ORL  DX, AX
	LEAQ ·addrV2Suspect(SB), DX
	ORB  (DX)(AX*1), R13

	// The address: four words, masked to its length.
	SHLL $5, R10
	LEAQ ·addrV2Masks(SB), DX
	ADDQ R10, DX
	MOVQ 2(R12), AX
	ANDQ 0(DX), AX
	MOVQ AX, ADDR+0(DI)
	MOVQ 10(R12), AX
	ANDQ 8(DX), AX
	MOVQ AX, ADDR+8(DI)
	MOVQ 18(R12), AX
	ANDQ 16(DX), AX
	MOVQ AX, ADDR+16(DI)
	MOVQ 26(R12), AX
	ANDQ 24(DX), AX
	MOVQ AX, ADDR+24(DI)

	// off = i + 4 + length, from &e[i]
	LEAQ 4(R12)(R11*1), BX
	SUBQ SI, BX
	ADDQ $ENTRY, DI
	INCQ CX
	JMP  loop

done:
	MOVQ suspects+48(FP), AX
	ORB  R13, (AX)
	MOVQ BX, off+56(FP)
	MOVQ CX, j+64(FP)
	RET
