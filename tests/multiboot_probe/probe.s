# Multiboot-1 probe kernel: a test substrate for smartos-lab, NOT SmartOS.
#
# It reports on COM1 (0x3F8, polled, 115200 8N1) what the boot loader handed
# it, then halts:
#
#   MBPROBE BEGIN
#   MBPROBE magic 0x2BADB002              (EAX at entry)
#   MBPROBE info-flags 0x0000024F         (mbi->flags)
#   MBPROBE cmdline <text>                (mbi->cmdline, if flag bit 2)
#   MBPROBE mods <n>                      (mbi->mods_count, if flag bit 3)
#   MBPROBE mod <i> start 0x.. end 0x.. head <hex of the first 16 bytes>
#   MBPROBE mod <i> cmdline <text>
#   MBPROBE END
#
# Then it idles like a kernel's clock loop, for the gdb tests: its own GDT and
# IDT, the PIC remapped to vectors 0x20-0x2F with only IRQ0 unmasked, the PIT
# at 100 Hz, and `sti; hlt` (no busy loop).  Each timer interrupt runs
# `probe_tick`, which adds one to `probe_ticks`.  `probe_signature` holds the
# known word PROBE_SIGNATURE.  A CPU exception prints `MBPROBE fault` and halts.
#
# Like illumos's amd64 unix, it is an ELF64 file whose Multiboot header sets
# the a.out-kludge flag (0x00010003): the loader loads the whole file at
# load_addr (load_end_addr = bss_end_addr = 0) and jumps to entry_addr in
# 32-bit protected mode.  The code is 32-bit (.code32) inside the ELF64 file.
# Assemble with `as --64` (MB_FLAGS may be overridden with --defsym) and link
# with probe.ld.

	.ifndef MB_FLAGS
	.set	MB_FLAGS, 0x00010003	# page-align modules, memory info, a.out kludge
	.endif
	.set	MB_MAGIC, 0x1BADB002
	.set	MB_BOOT_MAGIC, 0x2BADB002
	.set	COM1, 0x3F8
	.set	PROBE_SIGNATURE, 0x5AFEB007
	.set	PIT_DIVISOR, 11932		# 1193182 Hz / 100
	.set	IDT_ENTRIES, 0x30		# 32 exceptions + 16 PIC IRQs

	.section .multiboot, "a"
	.balign	4
mb_header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)	# checksum
	.long	mb_header		# header_addr
	.long	image_start		# load_addr: where file offset 0 goes
	.long	0			# load_end_addr: 0 = the whole file
	.long	0			# bss_end_addr: none
	.long	probe_start		# entry_addr

	.text
	.code32
	.globl	probe_start
probe_start:
	cli
	cld
	movl	$stack_top, %esp
	movl	%eax, saved_magic
	movl	%ebx, saved_mbi
	call	serial_init

	movl	$s_begin, %esi
	call	puts
	movl	$s_magic, %esi
	call	puts
	movl	saved_magic, %eax
	call	put_hex32
	call	newline
	cmpl	$MB_BOOT_MAGIC, saved_magic
	jne	done			# not a Multiboot loader: EBX means nothing

	movl	saved_mbi, %ebx
	movl	$s_flags, %esi
	call	puts
	movl	(%ebx), %eax
	call	put_hex32
	call	newline

	testl	$4, (%ebx)		# MULTIBOOT_INFO_CMDLINE
	jz	1f
	movl	$s_cmdline, %esi
	call	puts
	movl	16(%ebx), %esi
	call	puts
	call	newline
1:
	testl	$8, (%ebx)		# MULTIBOOT_INFO_MODS
	jz	done
	movl	20(%ebx), %eax
	movl	%eax, mods_count
	movl	24(%ebx), %eax
	movl	%eax, mod_ptr
	movl	$s_mods, %esi
	call	puts
	movl	mods_count, %eax
	call	put_dec
	call	newline
	movl	$0, mod_index

mod_loop:
	movl	mod_index, %eax
	cmpl	mods_count, %eax
	jae	done
	movl	mod_ptr, %ebx		# struct { start, end, cmdline, pad }

	movl	$s_mod, %esi
	call	puts
	movl	mod_index, %eax
	call	put_dec
	movl	$s_start, %esi
	call	puts
	movl	0(%ebx), %eax
	call	put_hex32
	movl	$s_end, %esi
	call	puts
	movl	4(%ebx), %eax
	call	put_hex32
	movl	$s_head, %esi
	call	puts
	movl	0(%ebx), %esi		# first min(16, end - start) bytes
	movl	4(%ebx), %ecx
	subl	%esi, %ecx
	cmpl	$16, %ecx
	jbe	2f
	movl	$16, %ecx
2:	jecxz	4f
3:	lodsb
	call	put_hex8
	loop	3b
4:	call	newline

	movl	$s_mod, %esi
	call	puts
	movl	mod_index, %eax
	call	put_dec
	movl	$s_mod_cmdline, %esi
	call	puts
	movl	8(%ebx), %esi
	testl	%esi, %esi
	jz	5f
	call	puts
5:	call	newline

	incl	mod_index
	addl	$16, mod_ptr
	jmp	mod_loop

done:
	movl	$s_end_line, %esi
	call	puts
	call	idle_setup
	sti
probe_idle:
	hlt				# woken by each timer tick
	jmp	probe_idle

# --- the clock loop (for the gdb tests) -------------------------------------------
idle_setup:
	lgdt	gdt_desc
	ljmp	$0x08, $1f		# reload CS from our GDT
1:	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$idt, %edi		# gates: 0-0x1F fault, 0x20 tick, 0x21-0x2F other IRQs
	xorl	%ecx, %ecx
2:	movl	$probe_fault, %eax
	cmpl	$0x20, %ecx
	jb	3f
	movl	$probe_irq, %eax
	jne	3f
	movl	$probe_tick, %eax
3:	movw	%ax, 0(%edi)		# offset 15:0
	movw	$0x08, 2(%edi)		# code selector
	movw	$0x8E00, 4(%edi)	# present, ring 0, 32-bit interrupt gate
	shrl	$16, %eax
	movw	%ax, 6(%edi)		# offset 31:16
	addl	$8, %edi
	incl	%ecx
	cmpl	$IDT_ENTRIES, %ecx
	jb	2b
	lidt	idt_desc
	movb	$0x11, %al		# PIC: ICW1 (init, ICW4 follows)
	outb	%al, $0x20
	outb	%al, $0xA0
	movb	$0x20, %al		# ICW2: vector bases 0x20, 0x28
	outb	%al, $0x21
	movb	$0x28, %al
	outb	%al, $0xA1
	movb	$0x04, %al		# ICW3: slave on IRQ2
	outb	%al, $0x21
	movb	$0x02, %al
	outb	%al, $0xA1
	movb	$0x01, %al		# ICW4: 8086 mode
	outb	%al, $0x21
	outb	%al, $0xA1
	movb	$0xFE, %al		# only IRQ0 (the PIT)
	outb	%al, $0x21
	movb	$0xFF, %al
	outb	%al, $0xA1
	movb	$0x34, %al		# PIT channel 0, lobyte/hibyte, rate generator
	outb	%al, $0x43
	movw	$PIT_DIVISOR, %ax
	outb	%al, $0x40
	movb	%ah, %al
	outb	%al, $0x40
	ret

	.globl	probe_tick
probe_tick:				# IRQ0: one clock tick
	pushl	%eax
	incl	probe_ticks
	movb	$0x20, %al		# end of interrupt
	outb	%al, $0x20
	popl	%eax
	iret

probe_irq:				# any other PIC line (spurious): acknowledge both PICs
	pushl	%eax
	movb	$0x20, %al
	outb	%al, $0xA0
	outb	%al, $0x20
	popl	%eax
	iret

probe_fault:
	movl	$s_fault, %esi
	call	puts
halt:
	cli
	hlt
	jmp	halt

# --- COM1 ------------------------------------------------------------------------
serial_init:				# 115200 baud, 8N1, FIFO on, no interrupts
	pushl	%eax
	pushl	%edx
	movw	$COM1 + 1, %dx
	movb	$0x00, %al
	outb	%al, %dx
	movw	$COM1 + 3, %dx
	movb	$0x80, %al		# DLAB on
	outb	%al, %dx
	movw	$COM1 + 0, %dx
	movb	$0x01, %al		# divisor 1 = 115200
	outb	%al, %dx
	movw	$COM1 + 1, %dx
	movb	$0x00, %al
	outb	%al, %dx
	movw	$COM1 + 3, %dx
	movb	$0x03, %al		# 8N1, DLAB off
	outb	%al, %dx
	movw	$COM1 + 2, %dx
	movb	$0xC7, %al
	outb	%al, %dx
	movw	$COM1 + 4, %dx
	movb	$0x03, %al		# DTR, RTS
	outb	%al, %dx
	popl	%edx
	popl	%eax
	ret

putc:					# %al; polls the line status for an empty THR
	pushl	%edx
	pushl	%eax
	movw	$COM1 + 5, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	popl	%eax
	movw	$COM1, %dx
	outb	%al, %dx
	popl	%edx
	ret

puts:					# NUL-terminated string at %esi
	pushl	%eax
	pushl	%esi
1:	lodsb
	testb	%al, %al
	jz	2f
	call	putc
	jmp	1b
2:	popl	%esi
	popl	%eax
	ret

newline:
	pushl	%eax
	movb	$'\r', %al
	call	putc
	movb	$'\n', %al
	call	putc
	popl	%eax
	ret

put_nibble:				# low 4 bits of %al as one hex digit
	pushl	%eax
	andb	$0x0F, %al
	addb	$'0', %al
	cmpb	$'9', %al
	jbe	1f
	addb	$'A' - '9' - 1, %al
1:	call	putc
	popl	%eax
	ret

put_hex8:				# %al as two hex digits
	pushl	%eax
	rorb	$4, %al
	call	put_nibble
	rolb	$4, %al
	call	put_nibble
	popl	%eax
	ret

put_hex32:				# %eax as 0x + eight hex digits
	pushl	%eax
	pushl	%ecx
	pushl	%esi
	movl	$s_0x, %esi
	call	puts
	movl	$8, %ecx
1:	roll	$4, %eax
	call	put_nibble
	loop	1b
	popl	%esi
	popl	%ecx
	popl	%eax
	ret

put_dec:				# %eax in decimal
	pushl	%eax
	pushl	%ebx
	pushl	%ecx
	pushl	%edx
	movl	$10, %ebx
	xorl	%ecx, %ecx
1:	xorl	%edx, %edx
	divl	%ebx
	pushl	%edx
	incl	%ecx
	testl	%eax, %eax
	jnz	1b
2:	popl	%eax
	addb	$'0', %al
	call	putc
	loop	2b
	popl	%edx
	popl	%ecx
	popl	%ebx
	popl	%eax
	ret

	.section .rodata
s_begin:	.asciz	"MBPROBE BEGIN\r\n"
s_magic:	.asciz	"MBPROBE magic "
s_flags:	.asciz	"MBPROBE info-flags "
s_cmdline:	.asciz	"MBPROBE cmdline "
s_mods:		.asciz	"MBPROBE mods "
s_mod:		.asciz	"MBPROBE mod "
s_start:	.asciz	" start "
s_end:		.asciz	" end "
s_head:		.asciz	" head "
s_mod_cmdline:	.asciz	" cmdline "
s_end_line:	.asciz	"MBPROBE END\r\n"
s_fault:	.asciz	"MBPROBE fault\r\n"
s_0x:		.asciz	"0x"

	.data				# in the file: the loader loads the file only
	.balign	4
saved_magic:	.long	0
saved_mbi:	.long	0
mods_count:	.long	0
mod_ptr:	.long	0
mod_index:	.long	0
	.globl	probe_signature, probe_ticks
probe_signature: .long	PROBE_SIGNATURE
probe_ticks:	.long	0
	.balign	8
gdt:		.quad	0
		.quad	0x00CF9A000000FFFF	# 0x08: flat 32-bit code
		.quad	0x00CF92000000FFFF	# 0x10: flat data
gdt_desc:	.word	3 * 8 - 1
		.long	gdt
	.balign	8
idt:		.skip	IDT_ENTRIES * 8
idt_desc:	.word	IDT_ENTRIES * 8 - 1
		.long	idt
	.balign	16
stack:		.skip	4096
stack_top:
