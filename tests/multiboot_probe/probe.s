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
s_0x:		.asciz	"0x"

	.data				# in the file: the loader loads the file only
	.balign	4
saved_magic:	.long	0
saved_mbi:	.long	0
mods_count:	.long	0
mod_ptr:	.long	0
mod_index:	.long	0
	.balign	16
stack:		.skip	4096
stack_top:
