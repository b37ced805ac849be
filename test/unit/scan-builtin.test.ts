import { test } from 'node:test';
import assert from 'node:assert/strict';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import yazl from 'yazl';
import { builtinScan, type BuiltinFinding } from '../../src/scan/builtin.js';
import { VolumeAnomaly } from '../../src/scan/anomaly.js';

// Put together at run time, so that this file and its build output are not themselves
// taken for a test virus or test spam by a scanner on the developer's machine.
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*' + 'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

async function mime(over: Partial<Mail.Options> = {}): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@example.test',
    to: 'bob@remote.test',
    subject: 'Quarterly figures',
    text: 'Hello Bob,\nthe figures are attached.\n',
    ...over,
  })
    .compile()
    .build();
}

async function zip(entries: [string, Buffer][], compress = true): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, data] of entries) z.addBuffer(data, name, { compress });
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The smallest thing Windows' loader would take for a program: MZ, e_lfanew, PE\0\0. */
function fakePe(): Buffer {
  const b = Buffer.alloc(0x100);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x14c, 0x84); // i386
  return b;
}

/** An OLE compound file whose root storage has class ID `clsid` (little-endian bytes, hex). */
function fakeOle(clsid: string): Buffer {
  const b = Buffer.alloc(1024);
  Buffer.from('d0cf11e0a1b11ae1', 'hex').copy(b, 0);
  b.writeUInt16LE(9, 0x1e); // 512-byte sectors
  b.writeUInt32LE(0, 0x30); // directory in sector 0, i.e. at byte 512
  b.write('Root Entry', 512, 'utf16le');
  b[512 + 0x42] = 5;
  Buffer.from(clsid, 'hex').copy(b, 512 + 0x50);
  return b;
}

const attach = (filename: string, content: Buffer, contentType = 'application/octet-stream'): Mail.Attachment => ({
  filename,
  content,
  contentType,
  contentTransferEncoding: 'base64',
});

const rules = (fs: BuiltinFinding[]) => fs.map((f) => `${f.kind}:${f.rule}`).sort();

test('GTUBE in a text/plain body is spam', async () => {
  const f = await builtinScan(await mime({ text: `Buy now!\n${GTUBE}\n` }));
  assert.deepEqual(f, [{ kind: 'spam', rule: 'GTUBE', detail: 'message body' }]);
});

test('GTUBE in a quoted-printable HTML part is found once decoded', async () => {
  // Long enough that quoted-printable must break the line with soft breaks, inside the pattern.
  const html = `<html><body><p style="font-family:Arial,Helvetica,sans-serif;color:#333">Dear customer &eacute;t&eacute;, ${GTUBE}</p></body></html>`;
  const msg = await mime({ text: 'plain alternative without the pattern', html, textEncoding: 'quoted-printable' });
  assert.ok(!msg.toString('latin1').includes(GTUBE), 'the raw message must not contain the pattern verbatim');
  assert.match(msg.toString('latin1'), /Content-Transfer-Encoding: quoted-printable/);
  assert.deepEqual(rules(await builtinScan(msg)), ['spam:GTUBE']);
});

test('EICAR as the body is a virus', async () => {
  const f = await builtinScan(await mime({ text: EICAR }));
  assert.deepEqual(f, [{ kind: 'virus', rule: 'EICAR', detail: 'message body' }]);
});

test('EICAR as a base64 attachment is a virus', async () => {
  const msg = await mime({ attachments: [attach('notes.txt', Buffer.from(EICAR), 'text/plain')] });
  assert.ok(!msg.toString('latin1').includes(EICAR));
  assert.deepEqual(await builtinScan(msg), [{ kind: 'virus', rule: 'EICAR', detail: 'notes.txt' }]);
});

test('EICAR inside a zip is a virus, named by its path', async () => {
  const z = await zip([['readme.txt', Buffer.from('hello')], ['test/eicar.txt', Buffer.from(EICAR)]]);
  const f = await builtinScan(await mime({ attachments: [attach('files.zip', z, 'application/zip')] }));
  assert.deepEqual(f, [{ kind: 'virus', rule: 'EICAR', detail: 'files.zip > test/eicar.txt' }]);
});

test('EICAR is found where it straddles two chunks of an unpacked entry', async () => {
  // yauzl hands out stored data in 64 KiB chunks and inflated data in 16 KiB ones.
  const data = Buffer.concat([Buffer.alloc(65536 - 30, 'a'), Buffer.from(EICAR), Buffer.alloc(100_000, 'a')]);
  for (const compress of [true, false]) {
    const z = await zip([['big.log', data]], compress);
    const f = await builtinScan(await mime({ attachments: [attach('logs.zip', z)] }));
    // Stored, the pattern is in the zip's own bytes as well.
    assert.deepEqual(f.map((x) => x.detail), compress ? ['logs.zip > big.log'] : ['logs.zip', 'logs.zip > big.log']);
  }
});

test('a PE executable renamed to report.pdf is caught by content', async () => {
  const f = await builtinScan(await mime({ attachments: [attach('report.pdf', fakePe(), 'application/pdf')] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'report.pdf (PE executable)' }]);
});

test('"MZ" text without a PE header is not a program', async () => {
  const b = Buffer.alloc(0x100, 0x20);
  b.write('MZ is the start of this note', 0, 'latin1');
  assert.deepEqual(await builtinScan(await mime({ attachments: [attach('mz.txt', b, 'text/plain')] })), []);
});

test('setup.exe inside invoice.zip is caught, the detail naming both', async () => {
  const z = await zip([['invoice.pdf', Buffer.from('%PDF-1.4\n%%EOF\n')], ['setup.exe', fakePe()]]);
  const f = await builtinScan(await mime({ attachments: [attach('invoice.zip', z, 'application/zip')] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'invoice.zip > setup.exe (PE executable)' }]);
});

test('an executable name is caught without executable content, also in a zip', async () => {
  const z = await zip([['run.bat', Buffer.from('@echo off\r\nstart calc\r\n')]]);
  const f = await builtinScan(await mime({ attachments: [attach('tools.zip', z), attach('macro.vbs', Buffer.from('MsgBox 1'), 'text/plain')] }));
  assert.deepEqual(
    f.map((x) => x.detail),
    ['tools.zip > run.bat (.bat file name)', 'macro.vbs (.vbs file name)'],
  );
});

test('double extensions, trailing dots and right-to-left overrides', async () => {
  const f = await builtinScan(
    await mime({
      attachments: [
        attach('invoice.pdf.exe', fakePe()),
        attach('scan.jpg      .scr', Buffer.from('x')),
        attach('setup.exe. ', Buffer.from('x')),
        attach('photo\u202egpj.scr', Buffer.from('x')),
      ],
    }),
  );
  assert.deepEqual(
    f.map((x) => `${x.rule} ${x.detail}`),
    [
      'DOUBLE_EXTENSION invoice.pdf.exe (PE executable disguised as .pdf)',
      'DOUBLE_EXTENSION scan.jpg      .scr (.scr file name disguised as .jpg)',
      'EXE_ATTACHMENT setup.exe. (.exe file name)',
      'EXE_ATTACHMENT photogpj.scr (.scr file name, name reversed by invisible characters)',
    ],
  );
});

test('ELF, Mach-O, Windows shortcut and installer content is caught under any name', async () => {
  const elf = Buffer.concat([Buffer.from('7f454c46020101', 'hex'), Buffer.alloc(64)]);
  const macho = Buffer.concat([Buffer.from('cffaedfe07000001', 'hex'), Buffer.alloc(64)]);
  const fat = Buffer.concat([Buffer.from('cafebabe00000002', 'hex'), Buffer.alloc(64)]);
  const lnk = Buffer.concat([Buffer.from('4c0000000114020000000000c000000000000046', 'hex'), Buffer.alloc(64)]);
  const msi = fakeOle('84100c0000000000c000000000000046'); // {000C1084-0000-0000-C000-000000000046}
  const f = await builtinScan(
    await mime({ attachments: [attach('a.dat', elf), attach('b.dat', macho), attach('c.dat', fat), attach('d.txt', lnk), attach('e.doc', msi)] }),
  );
  assert.deepEqual(
    f.map((x) => x.detail),
    ['a.dat (ELF executable)', 'b.dat (Mach-O executable)', 'c.dat (Mach-O universal executable)', 'd.txt (Windows shortcut)', 'e.doc (Windows installer)'],
  );
});

test('a Word 97 document (OLE, not an installer) and a Java class version word are not programs', async () => {
  const doc = fakeOle('0609020000000000c000000000000046'); // {00020906-...}: Word.Document.8
  const cls = Buffer.concat([Buffer.from('cafebabe00000034', 'hex'), Buffer.alloc(64)]); // class file, Java 8
  assert.deepEqual(await builtinScan(await mime({ attachments: [attach('letter.doc', doc, 'application/msword'), attach('data.bin', cls)] })), []);
});

test('a renamed Java program (manifest and classes) is caught', async () => {
  const jar = await zip([['META-INF/MANIFEST.MF', Buffer.from('Manifest-Version: 1.0\nMain-Class: a.Main\n')], ['a/Main.class', Buffer.from('cafebabe00000034', 'hex')]]);
  const f = await builtinScan(await mime({ attachments: [attach('photos.zip', jar)] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'photos.zip (Java program)' }]);
  // Named .jar it is reported once, not once for the name and again for the content.
  assert.equal((await builtinScan(await mime({ attachments: [attach('tool.jar', jar)] }))).length, 1);
});

test('nested zips are opened to the depth limit, and beyond it is a finding', async () => {
  const inner = await zip([['payload/setup.exe', fakePe()]]);
  const outer = await zip([['docs/inner.zip', inner]]);
  const f = await builtinScan(await mime({ attachments: [attach('outer.zip', outer)] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'outer.zip > docs/inner.zip > payload/setup.exe (PE executable)' }]);

  // One level deeper than maxZipDepth: the innermost archive cannot be vouched for.
  const third = await zip([['x.zip', outer]]);
  const g = await builtinScan(await mime({ attachments: [attach('third.zip', third)] }));
  assert.deepEqual(g, [{ kind: 'executable', rule: 'ZIP_LIMIT', detail: 'third.zip > x.zip > docs/inner.zip (archives nested deeper than 2)' }]);
  assert.deepEqual(rules(await builtinScan(await mime({ attachments: [attach('third.zip', third)] }), { maxZipDepth: 3 })), ['executable:EXE_ATTACHMENT']);
});

test('zip bomb guards: too many entries, too many bytes', async () => {
  const many = await zip(Array.from({ length: 1100 }, (_, i): [string, Buffer] => [`f${i}.txt`, Buffer.from('x')]));
  const f = await builtinScan(await mime({ attachments: [attach('many.zip', many)] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'ZIP_LIMIT', detail: 'many.zip (more than 1000 archive entries)' }]);
  assert.deepEqual(await builtinScan(await mime({ attachments: [attach('many.zip', many)] }), { maxZipEntries: 2000 }), []);

  // 20 MB of zeros deflate to about 20 KB; the budget stops it by what it inflates to.
  const bomb = await zip([['zeros.bin', Buffer.alloc(20 * 1024 * 1024)]]);
  assert.ok(bomb.length < 100_000);
  const g = await builtinScan(await mime({ attachments: [attach('bomb.zip', bomb)] }), { maxUnzippedBytes: 1024 * 1024 });
  assert.deepEqual(g, [{ kind: 'executable', rule: 'ZIP_LIMIT', detail: 'bomb.zip > zeros.bin (more than 1 MiB unpacked)' }]);

  // The budget is per message: two archives under it each, over it together.
  const half = await zip([['a.bin', Buffer.alloc(700 * 1024)]]);
  const h = await builtinScan(await mime({ attachments: [attach('one.zip', half), attach('two.zip', half)] }), { maxUnzippedBytes: 1024 * 1024 });
  assert.deepEqual(rules(h), ['executable:ZIP_LIMIT']);
  assert.match(h[0]!.detail, /^two\.zip > a\.bin/);
});

test('an executable past the byte budget is still caught by its first bytes', async () => {
  const big = Buffer.concat([fakePe(), Buffer.alloc(3 * 1024 * 1024)]);
  const z = await zip([['tool.dat', big]]);
  const f = await builtinScan(await mime({ attachments: [attach('t.zip', z)] }), { maxUnzippedBytes: 1024 * 1024 });
  assert.deepEqual(rules(f), ['executable:EXE_ATTACHMENT', 'executable:ZIP_LIMIT']);
});

/** Sets the "encrypted" general purpose bit on every entry, in the local and central headers. */
function markEncrypted(z: Buffer): Buffer {
  const b = Buffer.from(z);
  for (let i = 0; i + 4 <= b.length; i++) {
    const sig = b.readUInt32LE(i);
    if (sig === 0x04034b50) b.writeUInt16LE(b.readUInt16LE(i + 6) | 1, i + 6);
    else if (sig === 0x02014b50) b.writeUInt16LE(b.readUInt16LE(i + 8) | 1, i + 8);
  }
  return b;
}

test('an encrypted entry is judged by its name only', async () => {
  // Deflated, so yauzl does not check the stored size against the 12-byte encryption header.
  const z = markEncrypted(await zip([['setup.exe', Buffer.from('not really encrypted')], ['budget.xlsx', fakePe()]]));
  const f = await builtinScan(await mime({ attachments: [attach('secret.zip', z)] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'secret.zip > setup.exe (.exe file name, encrypted)' }]);
});

test('an entry yauzl would refuse for its name ("../") is still judged', async () => {
  const z = await zip([['ok.txt', Buffer.from('x')], ['zzzzz/evil.exe', fakePe()]]);
  const patched = Buffer.from(z.toString('latin1').replaceAll('zzzzz/', '../../'), 'latin1');
  const f = await builtinScan(await mime({ attachments: [attach('a.zip', patched)] }));
  assert.deepEqual(f, [{ kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'a.zip > ../../evil.exe (PE executable)' }]);
});

test('corrupt zips are no crash and no finding', async () => {
  const good = await zip([['a.txt', Buffer.from('hello world '.repeat(100))]]);
  const truncated = good.subarray(0, good.length - 10);
  const garbage = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(300, 0xff)]);
  const badData = Buffer.from(good);
  badData.fill(0xee, 40, 80); // inside the deflate stream
  const f = await builtinScan(await mime({ attachments: [attach('t.zip', truncated), attach('g.zip', garbage), attach('d.zip', badData)] }));
  assert.deepEqual(f, []);
});

test('clean mail: a PDF, a text file and a .docx (a zip of XML) are no finding', async () => {
  const pdf = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
  const docx = await zip([
    ['[Content_Types].xml', Buffer.from('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')],
    ['_rels/.rels', Buffer.from('<?xml version="1.0"?><Relationships/>')],
    ['word/document.xml', Buffer.from('<?xml version="1.0"?><w:document><w:body><w:p>Hello</w:p></w:body></w:document>')],
    ['word/media/image1.png', Buffer.from('89504e470d0a1a0a', 'hex')],
  ]);
  const msg = await mime({
    html: '<p>Figures attached.</p>',
    attachments: [
      attach('figures.pdf', pdf, 'application/pdf'),
      attach('notes.txt', Buffer.from('Nothing to see here.\n'), 'text/plain'),
      attach('report.docx', docx, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'),
      attach('archive.zip', await zip([['report.docx', docx], ['figures.pdf', pdf]])),
    ],
  });
  assert.deepEqual(await builtinScan(msg), []);
});

test('executables: false looks for the test patterns only', async () => {
  const z = await zip([['setup.exe', fakePe()], ['eicar.txt', Buffer.from(EICAR)]]);
  const jar = await zip([['META-INF/MANIFEST.MF', Buffer.from('Main-Class: a.Main\n')], ['a/Main.class', Buffer.from('cafebabe00000034', 'hex')]]);
  const f = await builtinScan(await mime({ attachments: [attach('x.zip', z), attach('y.exe', fakePe()), attach('z.zip', jar)] }), { executables: false });
  assert.deepEqual(f, [{ kind: 'virus', rule: 'EICAR', detail: 'x.zip > eicar.txt' }]);
});

test('a forwarded message is looked into, inline or as an attachment', async () => {
  const inner = await mime({ subject: 'fwd', text: GTUBE, attachments: [attach('setup.exe', fakePe())] });
  // Inline (nodemailer's default for message/rfc822), mailparser merges its parts into the outer message's.
  const f = await builtinScan(await mime({ attachments: [{ filename: 'original.eml', content: inner, contentType: 'message/rfc822' }] }));
  assert.deepEqual(f, [
    { kind: 'spam', rule: 'GTUBE', detail: 'message body' },
    { kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'setup.exe (PE executable)' },
  ]);
  // As an attachment, mailparser hands it over undecoded; it is parsed as a message of its own.
  const g = await builtinScan(
    await mime({ attachments: [{ filename: 'original.eml', content: inner, contentType: 'message/rfc822', contentDisposition: 'attachment' }] }),
  );
  assert.deepEqual(g, [
    { kind: 'spam', rule: 'GTUBE', detail: 'original.eml > message body' },
    { kind: 'executable', rule: 'EXE_ATTACHMENT', detail: 'original.eml > setup.exe (PE executable)' },
  ]);
});

test('file names cannot put line breaks into a detail', async () => {
  const f = await builtinScan(await mime({ attachments: [attach('a\r\nX-Evil: 1\r\n.exe', Buffer.from('x'))] }));
  assert.equal(f.length, 1);
  assert.doesNotMatch(f[0]!.detail, /[\r\n]/);
});

test('garbage is no finding and no exception', async () => {
  const random = Buffer.alloc(64 * 1024);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
  for (const m of [Buffer.alloc(0), random, Buffer.from('\r\n\r\n\r\n'), Buffer.from('Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n')]) {
    assert.deepEqual(await builtinScan(m), []);
  }
  // A 2 MiB header block (no line end at all) is one the MIME parser refuses, and the fast
  // path no longer decides on what is not a header (issue 12): it is not let out unexamined.
  assert.deepEqual(rules(await builtinScan(Buffer.alloc(2 * 1024 * 1024, 'A'))), ['virus:MIME_LIMIT']);
});

// --- VolumeAnomaly ---------------------------------------------------------------

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

function feed(v: VolumeAnomaly, account: string, start: string, perDay: number[]): string {
  perDay.forEach((n, i) => {
    for (let k = 0; k < n; k++) v.record(account, addDays(start, i));
  });
  return addDays(start, perDay.length);
}

test('volume: no alarm without enough history', () => {
  const v = new VolumeAnomaly({ minDaysOfHistory: 7, factor: 5, floor: 50 });
  const today = feed(v, 'alice', '2025-03-01', [10, 10, 10, 10, 10, 10]);
  for (let i = 0; i < 1000; i++) v.record('alice', today);
  assert.deepEqual(v.check('alice', today), { anomalous: false, today: 1000, usual: 10 });
  assert.deepEqual(v.check('nobody', today), { anomalous: false, today: 0, usual: 0 });
});

test('volume: a spike over factor x usual and over the floor is anomalous', () => {
  const v = new VolumeAnomaly({ minDaysOfHistory: 7, factor: 5, floor: 50 });
  const today = feed(v, 'alice', '2025-03-01', [40, 38, 42, 40, 41, 39, 40, 40]);
  for (let i = 0; i < 200; i++) v.record('alice', today);
  assert.equal(v.check('alice', today).anomalous, false, '200 is exactly 5 x 40, not more');
  v.record('alice', today);
  assert.deepEqual(v.check('alice', today), { anomalous: true, today: 201, usual: 40 });
});

test('volume: steady volume and small accounts under the floor are not anomalous', () => {
  const v = new VolumeAnomaly(); // defaults: 7 days, 5x, floor 50
  let today = feed(v, 'bob', '2025-03-01', Array(20).fill(100));
  feed(v, 'bob', today, [110]);
  assert.deepEqual(v.check('bob', today), { anomalous: false, today: 110, usual: 100 });

  today = feed(v, 'carol', '2025-03-01', Array(10).fill(2));
  feed(v, 'carol', today, [50]);
  assert.equal(v.check('carol', today).anomalous, false, 'at the floor');
  v.record('carol', today);
  assert.equal(v.check('carol', today).anomalous, true);
});

test('volume: an earlier spike does not raise the usual, idle days do not lower it', () => {
  const v = new VolumeAnomaly({ minDaysOfHistory: 7, factor: 5, floor: 50 });
  // Weekdays only, one of them already a spike.
  for (const [i, n] of [[0, 30], [1, 30], [2, 900], [3, 30], [4, 30], [7, 30], [8, 30], [9, 30]] as const) {
    for (let k = 0; k < n; k++) v.record('dave', addDays('2025-03-03', i));
  }
  const today = addDays('2025-03-03', 10);
  for (let k = 0; k < 151; k++) v.record('dave', today);
  assert.deepEqual(v.check('dave', today), { anomalous: true, today: 151, usual: 30 });
});

test('volume: a dormant account waking up is compared with its old habit', () => {
  const v = new VolumeAnomaly({ minDaysOfHistory: 7, factor: 5, floor: 50 });
  feed(v, 'erin', '2025-01-01', Array(10).fill(5));
  const today = '2025-06-01';
  for (let k = 0; k < 300; k++) v.record('erin', today);
  assert.deepEqual(v.check('erin', today), { anomalous: true, today: 300, usual: 5 });
});

test('volume: memory is bounded to 30 active days per account', () => {
  const v = new VolumeAnomaly();
  feed(v, 'frank', '2025-01-01', Array(100).fill(1));
  const snap = v.snapshot() as { accounts: [string, [string, number][]][] };
  const days = snap.accounts[0]![1];
  assert.equal(days.length, 30);
  assert.equal(days[0]![0], '2025-03-12');
  assert.equal(days[29]![0], '2025-04-10');
});

test('volume: snapshot and restore round trip through JSON', () => {
  const v = new VolumeAnomaly();
  const today = feed(v, 'alice', '2025-03-01', [40, 38, 42, 40, 41, 39, 40, 40]);
  feed(v, 'bob', '2025-03-01', [1, 2, 3]);
  for (let i = 0; i < 250; i++) v.record('alice', today);
  const w = new VolumeAnomaly();
  w.restore(JSON.parse(JSON.stringify(v.snapshot())));
  assert.deepEqual(w.snapshot(), v.snapshot());
  assert.deepEqual(w.check('alice', today), v.check('alice', today));
  assert.equal(w.check('alice', today).anomalous, true);
});

test('volume: restore tolerates garbage, keeping only what is well formed', () => {
  const v = new VolumeAnomaly();
  for (const junk of [null, undefined, 42, 'x', [], {}, { v: 2, accounts: [] }, { v: 1, accounts: 'no' }, { v: 1, accounts: [null, 1, ['a'], [7, []]] }]) {
    v.restore(junk);
    assert.deepEqual(v.snapshot(), { v: 1, accounts: [] });
  }
  v.restore({
    v: 1,
    accounts: [
      ['__proto__', [['2025-03-01', 3]]],
      ['g', [['2025-02-31', 1], ['yesterday', 1], ['2025-03-01', -1], ['2025-03-02', 1.5], ['2025-03-03', '4'], null, ['2025-03-04', 4]]],
    ],
  });
  assert.deepEqual(v.snapshot(), { v: 1, accounts: [['__proto__', [['2025-03-01', 3]]], ['g', [['2025-03-04', 4]]]] });
  v.record('g', 'not a day');
  v.record('g', '2025-03-05');
  assert.deepEqual(v.check('g', '2025-03-05'), { anomalous: false, today: 1, usual: 4 });
});

test('a message the MIME parser refuses (over 1000 parts) is not let through unexamined', async () => {
  const parts = Array.from({ length: 1100 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
  const msg = Buffer.from(`From: a@example.test\r\nTo: b@remote.test\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts}--b--\r\n`);
  const f = await builtinScan(msg);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.rule, 'MIME_LIMIT');
});
