import { z } from 'zod';
import { checkDomain, DNS_LABEL_PATTERN, DOMAIN_PATTERN, withAsciiDomain } from '../core/names.js';

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The one config schema. Every field is described here; defaults come from here.
 * Objects are strict: an unknown key is refused with its path named.
 */

/**
 * A mail domain, given in A-labels or U-labels (例子.測試), in any case; stored in its one
 * compared form, lower-case A-labels (core/names.ts checkDomain), so the document reads
 * back the same whichever spelling was set.
 */
const domainName = z.string().transform((s, ctx) => {
  const c = checkDomain(s);
  if (c.ok) return c.domain;
  ctx.addIssue({ code: 'custom', message: c.reason, input: s });
  return z.NEVER;
});

/** An ASCII dot-atom local part (alert mail and logins are plain), then a stored-form domain. */
const ASCII_ADDRESS = new RegExp(`^[a-z0-9!#$%&'*+/=?^_\`{|}~-]+(\\.[a-z0-9!#$%&'*+/=?^_\`{|}~-]+)*@${DOMAIN_PATTERN.source.slice(1)}`);

/** A mail address; its domain may be given in U-labels and is stored in A-labels, as logins are. */
const mailAddress = z.string().transform((s, ctx) => {
  const a = withAsciiDomain(s);
  if (a && ASCII_ADDRESS.test(a)) return a;
  ctx.addIssue({ code: 'custom', message: 'expected an address such as admin@example.test or admin@例子.測試', input: s });
  return z.NEVER;
});

const ipOrCidr = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
  error: 'expected an IPv4/IPv6 address or CIDR range such as 192.168.1.0/24',
});

const port = z.number().int().min(0).max(65535);

/** host:port for a listener: 127.0.0.1:8443, [::1]:8443, 0.0.0.0:443. */
const hostPort = z.string().refine((v) => parseHostPort(v) !== null, { message: 'expected host:port such as 127.0.0.1:8443 or [::1]:8443' });

export function parseHostPort(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|[A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const p = Number(m[3]);
  return p <= 65535 ? { host: (m[1] ?? m[2])!, port: p } : null;
}

/** An archive address condition: a whole address, or a domain (example.test or @example.test). */
const addressOrDomain = z
  .string()
  .min(1)
  .max(320)
  .transform((s, ctx) => {
    const t = s.trim().toLowerCase();
    const at = t.lastIndexOf('@');
    const domain = checkDomain(at >= 0 ? t.slice(at + 1) : t);
    if (!domain.ok || (at > 0 && !/^[^\s@]+$/.test(t.slice(0, at)))) {
      ctx.addIssue({ code: 'custom', message: 'expected an address (a@example.test) or a domain (example.test)', input: s });
      return z.NEVER;
    }
    return at > 0 ? `${t.slice(0, at)}@${domain.domain}` : domain.domain;
  });

/** A backup target: where and how to log in (the password is a secret, masked by `config get`). */
const backupTarget = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'lower-case letters, digits and -, at most 32').describe('What the target is called in commands'),
  type: z.enum(['smb', 'sftp', 'dir']),
  url: z.string().min(1).max(400).describe('smb://host[:port]/share[/folder], sftp://host[:port]/folder, or an absolute folder for dir'),
  user: z.string().max(128).default('').describe('Login (smb: user or DOMAIN\\user)'),
  password: z.string().max(256).default('').describe('Password at the target').meta({ secret: true }),
  hostKey: z.string().max(128).default('').describe("SFTP: the server's host key (SHA256, base64), pinned at the first connection"),
});

/** One archive rule: every condition given must hold; the first rule that matches decides. */
const archiveRule = z
  .strictObject({
    name: z.string().max(80).optional().describe('A label shown in `mlsd archive show`'),
    direction: z.array(z.enum(['in', 'out', 'internal'])).min(1).optional().describe('in: from outside; out: a local sender to outside; internal: local to local'),
    from: z.array(addressOrDomain).min(1).optional().describe('Envelope sender is one of these addresses or in one of these domains'),
    to: z.array(addressOrDomain).min(1).optional().describe('Some envelope recipient (Bcc included) is one of these addresses or in one of these domains'),
    subject: z.string().min(1).max(200).optional().describe('The Subject contains this text (case-insensitive)'),
    minBytes: z.number().int().min(0).optional(),
    maxBytes: z.number().int().min(0).optional(),
    attachments: z.boolean().optional().describe('true: only mail with attachments; false: only mail without'),
    verdict: z.array(z.enum(['clean', 'spam', 'virus'])).min(1).optional().describe("The scanners' class"),
    action: z.enum(['archive', 'skip']),
    retentionYears: z.number().min(1e-9).max(100).optional().describe('For action archive: how long (fractions allowed: 0.0000001 is about 3 seconds); default archive.retentionYears'),
  })
  .refine((r) => r.action === 'archive' || r.retentionYears === undefined, { message: 'retentionYears is for action archive', path: ['retentionYears'] });

export const listenerSchema = z
  .strictObject({
    name: z.string().min(1).describe('Listener name: mx, submission, smtps or any label'),
    host: z.string().min(1).describe('Address to bind'),
    port: port.describe('TCP port to bind (0 picks a free one)'),
    starttls: z.boolean().default(false).describe('Offer STARTTLS'),
    implicitTls: z.boolean().default(false).describe('TLS from the first byte (smtps)'),
    authRequired: z.boolean().default(false).describe('MAIL needs a prior AUTH (submission)'),
    greetingDelayMs: z
      .number().int().min(0).max(30000).optional()
      .describe('Wait before the greeting to catch early talkers; default 100 ms on plain MX, 0 elsewhere'),
  })
  .refine((l) => !(l.starttls && l.implicitTls), { message: 'starttls and implicitTls exclude each other', path: ['starttls'] });

export const configSchema = z.strictObject({
  hostname: z.string().min(1).default('mail.example.test').describe('Name in the greeting and Received headers'),
  domains: z.array(domainName).default(['example.test']).describe('Local mail domains'),
  smtp: z
    .strictObject({
      listeners: z.array(listenerSchema).min(1).default([
        { name: 'mx', host: '0.0.0.0', port: 25, starttls: true, implicitTls: false, authRequired: false },
        { name: 'submission', host: '0.0.0.0', port: 587, starttls: true, implicitTls: false, authRequired: true },
        { name: 'smtps', host: '0.0.0.0', port: 465, starttls: false, implicitTls: true, authRequired: false },
      ])
        // Bound once, at start.
        .meta({ restart: true }),
      maxMessageBytes: z.number().int().min(1024).default(52428800).describe('SIZE limit; larger messages get 552 5.3.4'),
      maxRecipients: z.number().int().min(1).max(10000).default(100).describe('Recipients per message; more get 452 4.5.3'),
      maxCommandLength: z.number().int().min(512).max(65536).default(4096).describe('Longest command line accepted'),
      maxBadCommands: z.number().int().min(1).max(100).default(10).describe('Refused commands before the client is disconnected'),
      socketTimeoutMs: z.number().int().min(1000).default(300000).describe('Idle time before a session is closed'),
      maxClients: z
        .number().int().min(1).default(500)
        .describe('Concurrent sessions over all listeners (one budget); past smtp.stress.threshold of it the box is under stress'),
      submissionReserve: z
        .number().min(0).max(0.9).default(0.1)
        .describe('Share of maxClients the MX listeners (no AUTH required, no implicit TLS) may not take: kept for people who log in'),
      stress: z
        .strictObject({
          threshold: z.number().gt(0).max(1).default(0.8).describe("Share of maxClients at which stress mode starts (Postfix's ${stress})"),
          idleTimeoutMs: z.number().int().min(1000).max(300000).default(10000).describe('Under stress: idle time after which a session not logged in and not inside DATA is closed (421 4.7.0); logged-in sessions keep smtp.socketTimeoutMs'),
          errorLimit: z.number().int().min(1).max(100).default(1).describe('Under stress: refusals that end a session'),
          alertAfterMinutes: z.number().int().min(0).max(1440).default(5).describe('Stress lasting this long mails an alert (0 = never)'),
        })
        .prefault({})
        .describe('Stress mode: when the connection budget runs short, idle anonymous sessions are closed and make room for new clients'),
      maxDataBytesInFlight: z
        .number().int().min(0).default(0)
        .describe('Bytes all DATA transfers in progress may hold at once (spool files, scan copies); a DATA past it gets 452 4.3.1. At least maxMessageBytes; 0 = 256 MiB or 2 x maxMessageBytes, whichever is more'),
      maxHops: z
        .number().int().min(1).max(1000).default(50)
        .describe('Received: headers a message may carry (as Postfix hopcount_limit); more get 554 5.4.6 at end of DATA'),
    })
    .refine((s) => s.maxDataBytesInFlight === 0 || s.maxDataBytesInFlight >= s.maxMessageBytes, {
      message: 'must be at least smtp.maxMessageBytes, or a message of the maximum size could never be received',
      path: ['maxDataBytesInFlight'],
    })
    .prefault({}),
  relay: z
    .strictObject({
      allowIps: z.array(ipOrCidr).default([]).describe('Client addresses/ranges allowed to relay'),
      allowRecipientDomains: z.array(domainName).default([]).describe('Remote domains anyone may relay to'),
      allowAuthenticated: z.boolean().default(true).describe('Authenticated sessions may relay'),
      localSenderFromOutside: z
        .enum(['reject', 'allow'])
        .default('reject')
        .describe(
          'A client with no login and not in allowIps using a local domain as envelope sender or header From: ' +
            'reject (550 5.7.1, as a forgery) or allow (accepted, never DKIM-signed; for mailing lists that resend our users\' posts)',
        ),
    })
    .prefault({}),
  senderLoginMismatch: z
    .enum(['reject', 'allow'])
    .default('reject')
    .describe('reject: an authenticated login may send only as addresses it owns'),
  timezone: z
    .string()
    .refine(isTimeZone, 'expected an IANA timezone such as Asia/Taipei')
    .default('UTC')
    .describe("The box's local timezone: day limits reset at its midnight"),
  thresholds: z
    .strictObject({
      alert: z.boolean().default(true).describe('Mail the administrators when a threshold trips'),
      perIpMessagesPerMinute: z.number().int().min(0).default(0).describe('Messages per client IP in any 60 s (0 = no limit)'),
      perIpRecipientsPerMinute: z.number().int().min(0).default(0).describe('Accepted recipients per client IP in any 60 s'),
      perIpMessagesPerDay: z.number().int().min(0).default(0).describe('Messages per client IP per local calendar day'),
      perAccountMessagesPerDay: z.number().int().min(0).default(0).describe('Messages per authenticated login per local calendar day'),
      perAccountNewRecipientsPerDay: z
        .number().int().min(0).default(0)
        .describe('Never-before-seen recipients per login per local day; past it the account is suspended (auth.suspendOnThreshold)'),
      newRecipientMemoryDays: z
        .number().int().min(1).max(3650).default(90)
        .describe('A recipient stays known (not new) this many days after the last committed message to it; older ones are forgotten'),
      perIpConnectionsPerMinute: z.number().int().min(0).default(0).describe('New connections per client IP in any 60 s'),
      perIpConcurrentConnections: z
        .number().int().min(0).default(50)
        .describe("Open connections per client address at once (Postfix's smtpd_client_connection_count_limit is 50 too)"),
      perSubnetConcurrentConnections: z
        .number().int().min(0).default(100)
        .describe('Open connections per network (subnetPrefixV4 / subnetPrefixV6) at once; relay.allowIps clients are not counted in it'),
      subnetPrefixV4: z.number().int().min(8).max(32).default(24).describe('IPv4 network size for perSubnetConcurrentConnections'),
      subnetPrefixV6: z.number().int().min(16).max(128).default(64).describe('IPv6 network size for perSubnetConcurrentConnections (one customer usually has a /64 or more)'),
      exemptIps: z.array(ipOrCidr).default([]).describe('Clients no threshold applies to (a newsletter sender, a scanner)'),
      exemptAccounts: z.array(mailAddress).default([]).describe('Logins no threshold applies to'),
    })
    .prefault({})
    .describe('Mail control thresholds (0 = no limit); relay.allowIps clients are not exempt'),
  auth: z
    .strictObject({
      lockout: z
        .strictObject({
          maxFailures: z.number().int().min(0).max(1000).default(5).describe('Failed AUTHs that lock an IP (or an account for that IP); 0 = never'),
          windowMinutes: z.number().int().min(1).max(1440).default(10).describe('Window in which failures are counted'),
          lockMinutes: z.number().int().min(1).max(10080).default(15).describe('How long a lock lasts'),
          ipv6Prefix: z
            .number()
            .int()
            .min(32)
            .max(128)
            .default(64)
            .describe('IPv6 clients are counted by this prefix length (one customer holds a whole /64); 128 = per address'),
        })
        .prefault({}),
      suspendOnThreshold: z
        .boolean()
        .default(true)
        .describe('Suspend an account from sending when it reaches suspendAtMultiple x thresholds.perAccountMessagesPerDay'),
      suspendAtMultiple: z
        .number().min(1).max(100).default(1)
        .describe('Suspend when messages sent plus MAILs refused at the limit today reach this x perAccountMessagesPerDay (1 = the first attempt past the limit)'),
      maxConcurrentChecks: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(1)
        .describe('Password checks (scrypt, on the thread pool the spool writes with) run at once; more wait in the queue'),
      maxQueuedChecks: z
        .number()
        .int()
        .min(0)
        .max(10000)
        .default(20)
        .describe('Password checks that may wait; past it AUTH gets 454 4.7.0 at once, without a check'),
    })
    .prefault({}),
  alerts: z
    .strictObject({
      adminEmails: z.array(mailAddress).default([]).describe('Who gets alert mail (local or remote addresses)'),
      periodMinutes: z.number().int().min(1).max(10080).default(60).describe('At most one alert per IP/account/limit in this period'),
    })
    .prefault({}),
  routing: z
    .strictObject({
      mode: z.enum(['mx', 'smarthost']).default('mx').describe('mx: look up each domain\'s MX; smarthost: everything through routing.smarthost'),
      smarthost: z
        .strictObject({
          host: z.string().default('').describe("The ISP's relay (name or address)"),
          port: port.default(587),
          user: z.string().default('').describe('AUTH login at the smarthost (empty: no AUTH)'),
          password: z.string().default('').describe('AUTH password at the smarthost').meta({ secret: true }),
          tls: z.enum(['none', 'starttls', 'implicit']).default('starttls').describe('starttls and implicit are required, never skipped'),
          verifyCertificate: z.boolean().default(true).describe("Check the smarthost's certificate against the system CAs"),
          maxPerHour: z.number().int().min(0).default(0).describe('Messages per hour the ISP allows (0 = no limit); past it mail waits in the queue'),
          maxPerDay: z.number().int().min(0).default(0).describe('Messages per day the ISP allows (0 = no limit)'),
        })
        .prefault({}),
      domains: z
        .record(
          domainName,
          z.strictObject({
            host: z.string().min(1).describe('Host that takes mail for this domain'),
            port: port.default(25),
            tls: z.enum(['none', 'starttls', 'implicit', 'opportunistic']).default('opportunistic'),
            verifyCertificate: z.boolean().default(true).describe('With starttls or implicit: check the certificate'),
          }),
        )
        .default({})
        .describe('Per-domain overrides: a partner domain routed to a fixed host'),
      sourceAddress: z.union([z.ipv4(), z.ipv6(), z.literal('')]).default('').describe('Local address outbound connections come from (empty: the system picks)'),
    })
    .refine((r) => r.mode !== 'smarthost' || r.smarthost.host !== '', { message: 'smarthost mode needs routing.smarthost.host', path: ['smarthost', 'host'] })
    .prefault({})
    .describe('Outbound routing'),
  delivery: z
    .strictObject({
      maxQueueDays: z.number().min(0.001).max(30).default(5).describe('Give up and bounce after this long in the queue'),
      retryBaseSeconds: z.number().int().min(1).max(3600).default(60).describe('First retry after this long; each next one waits twice as long'),
      retryMaxSeconds: z.number().int().min(1).max(86400).default(3600).describe('Longest wait between two attempts'),
      maxConnections: z.number().int().min(1).max(500).default(20).describe('Outbound SMTP connections at once'),
      maxConnectionsPerDomain: z.number().int().min(1).max(100).default(10).describe('Outbound connections at once to one destination'),
      perDomainMessagesPerMinute: z.number().int().min(0).default(0).describe('Messages per minute to one recipient domain (0 = no limit)'),
      connectTimeoutSeconds: z.number().int().min(1).max(600).default(30),
      idleConnectionSeconds: z.number().min(0).max(300).default(5).describe('How long an idle outbound connection is kept for the next message'),
    })
    .prefault({}),
  dns: z
    .strictObject({
      servers: z
        .array(z.string().regex(/^(\[[0-9a-f:.]+\]|[0-9.]+)(:\d{1,5})?$|^[0-9a-f:]+$/i, 'expected an address such as 192.168.1.1 or 127.0.0.1:5353'))
        .default([])
        .describe('DNS servers for MX and blacklist look-ups (empty: the system resolvers)'),
      timeoutSeconds: z.number().int().min(1).max(60).default(5),
    })
    .prefault({}),
  dkim: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Sign outbound mail from local domains'),
      selector: z.string().regex(DNS_LABEL_PATTERN, 'expected a DNS label such as mlsd').default('mlsd'),
    })
    .prefault({}),
  dnsbl: z
    .strictObject({
      checkIps: z.array(z.ipv4()).default([]).describe("The box's public outbound address(es) to watch on blacklists"),
      zones: z
        .array(domainName)
        .default(['zen.spamhaus.org', 'bl.spamcop.net', 'b.barracudacentral.org', 'psbl.surriel.com'])
        .describe('DNS blacklists to query'),
      intervalMinutes: z.number().min(0.01).max(1440).default(30).describe('How often to check'),
      autoReroute: z.boolean().default(false).describe('While our own address is listed, send mx-mode mail through the smarthost'),
    })
    .prefault({}),
  scan: z
    .strictObject({
      outbound: z
        .strictObject({
          enabled: z.boolean().default(true).describe('Scan mail from local senders (authenticated sessions and relay.allowIps clients)'),
          action: z.enum(['quarantine', 'deliver', 'delete']).default('quarantine').describe('What happens to spam: quarantine (recommended), deliver with X-Spam headers, or delete'),
        })
        .prefault({}),
      inbound: z
        .strictObject({
          enabled: z.boolean().default(false).describe('Scan mail from outside with the same engines'),
          action: z.enum(['quarantine', 'deliver', 'delete']).default('deliver'),
        })
        .prefault({}),
      virusAction: z.enum(['quarantine', 'reject']).default('reject').describe('Viruses and executable attachments are never delivered: quarantined, or refused at end of DATA with 554 5.7.1'),
      onEngineFailure: z.enum(['defer', 'pass']).default('defer').describe('An engine down or slow: defer (451 4.7.1, the client retries) or pass the message with a header'),
      timeoutSeconds: z.number().min(0.1).max(300).default(30).describe('How long an engine may take'),
      maxBytes: z.number().int().min(1024).default(52428800).describe('Larger messages are not scanned (an event); the default scans everything smtp.maxMessageBytes lets in'),
      quarantineDays: z.number().min(0.00001).max(365).default(30).describe('Quarantined messages are deleted after this long'),
      alertAfterHits: z.number().int().min(1).max(1000).default(3).describe('Quarantined/refused messages from one account or client in 24 h that raise a compromised-account alert'),
      executables: z.boolean().default(true).describe('Treat executable attachments (also inside zips) like viruses'),
      spamassassin: z
        .strictObject({ enabled: z.boolean().default(false), host: z.string().default('127.0.0.1'), port: port.default(783) })
        .prefault({}),
      rspamd: z
        .strictObject({ enabled: z.boolean().default(false), url: z.url().default('http://127.0.0.1:11333') })
        .prefault({}),
      clamav: z
        .strictObject({ enabled: z.boolean().default(false), host: z.string().default('127.0.0.1'), port: port.default(3310) })
        .prefault({}),
      anomaly: z
        .strictObject({
          factor: z.number().min(1).default(5).describe("An account sending more than this many times its usual daily volume is reported"),
          floor: z.number().int().min(1).default(50).describe('...but never below this many messages a day'),
        })
        .prefault({})
        // The volume history is built with these at start.
        .meta({ restart: true }),
    })
    .prefault({})
    .describe('Spam and virus scanning; the built-in layer (GTUBE, EICAR, executables) runs first on every scanned message (outbound by default, inbound only with scan.inbound.enabled)'),
  ha: z
    .strictObject({
      enabled: z.boolean().default(false).describe('Run as one box of a real-time HA pair'),
      nodeId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'expected a short lower-case name such as a').default('a').describe('This box in the pair; the two must differ'),
      priority: z.number().int().min(0).max(1000).default(100).describe('With both boxes up and current, the higher priority is active'),
      listen: z.strictObject({ host: z.string().min(1).default('0.0.0.0'), port: port.default(7001) }).prefault({}).describe('Replication and network heartbeat: where this box listens'),
      peer: z.strictObject({ host: z.string().default(''), port: port.default(7001) }).prefault({}).describe('The other box'),
      sharedKey: z.string().default('').describe('Secret shared by both boxes: authenticates heartbeats, authenticates and encrypts replication').meta({ secret: true }),
      serial: z
        .strictObject({ device: z.string().default('').describe('Null-modem heartbeat cable; empty for none'), baud: z.number().int().min(1200).max(921600).default(115200) })
        .prefault({}),
      heartbeatMs: z.number().int().min(20).max(10000).default(200),
      deadMs: z.number().int().min(100).max(60000).default(1500).describe('The peer is dead when both links are silent this long'),
      initDeadMs: z.number().int().min(100).max(120000).default(5000).describe('At boot, how long to wait for a peer before deciding alone'),
      syncTimeoutMs: z.number().int().min(50).max(60000).default(2000).describe('How long a commit waits for the standby'),
      onPeerLost: z.enum(['accept', 'tempfail']).default('accept').describe('Standby not answering: accept on one disk (and catch up later), or answer 451 4.3.0'),
      serviceAddress: z.string().default('').describe('The address clients use; held by the active box'),
      gateway: z.string().default('').describe('host:port whose reachability tells a box with both links down that its own network still works; empty for no check'),
    })
    .prefault({})
    .refine((h) => !h.enabled || h.peer.host !== '', { message: 'ha.enabled needs the other box in ha.peer.host', path: ['peer', 'host'] })
    .refine((h) => !h.enabled || h.sharedKey.length >= 16, { message: 'ha.enabled needs a sharedKey of at least 16 characters', path: ['sharedKey'] })
    .refine((h) => h.deadMs > h.heartbeatMs * 2, { message: 'deadMs must be more than two heartbeats', path: ['deadMs'] })
    .refine((h) => h.initDeadMs >= h.deadMs, { message: 'initDeadMs must be at least deadMs', path: ['initDeadMs'] })
    // The HA node, its links and its serial line are set up once, at start.
    .meta({ restart: true }),
  spool: z
    .strictObject({
      minFreeBytes: z
        .number().int().min(0).default(64 * 1024 * 1024)
        .describe('Below this much free space on the data disk, new mail gets 452 4.3.1'),
    })
    .prefault({}),
  disk: z
    .strictObject({
      pollMinutes: z.number().min(0.01).max(1440).default(10).describe('How often the data disk (SMART, space) is read; `mlsd disk poll` reads it at once'),
      maxTemperatureC: z.number().int().min(20).max(100).default(55).describe('Above this data disk temperature (Celsius) an alert is mailed'),
      usageLevels: z
        .array(z.number().min(1).max(100))
        .min(1)
        .default([80, 90, 95])
        .describe('Data disk usage levels (percent) that alert; at the highest one new mail gets 452 4.3.1'),
      device: z.string().default('').describe('The data disk device for smartctl (Linux board); empty: the board file\'s dataDisk.device'),
      simFixtures: z.string().default('test/fixtures/smartctl/healthy').describe('Sim board: folder of smartctl -j output (data.json, optional space.json) read as the data disk'),
    })
    .prefault({}),
  console: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Offer a login prompt on the serial console').meta({ restart: true }),
      device: z.string().default('').describe("Serial console device; empty for the board's (none on the sim board, whose device is \"pty\")").meta({ restart: true }),
      baud: z.number().int().min(1200).max(921600).optional().describe("Line speed; the board's when unset").meta({ restart: true }),
      lang: z.enum(['en', 'zh-TW']).default('en').describe('Language of the console prompts and help'),
      idleMinutes: z.number().min(0.01).max(1440).default(10).describe('A logged-in console session idle this long is logged out (fractions allowed)'),
      freeFailures: z.number().int().min(1).max(100).default(3).describe('Failed logins before each further attempt waits (1 s, doubling, at most maxDelaySeconds)'),
      maxDelaySeconds: z.number().int().min(1).max(3600).default(60).describe('The longest wait after failed console logins'),
    })
    .prefault({})
    .describe('The serial console: admin login, then the CLI commands'),
  panel: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Run the front panel: buttons, LEDs and the LCD menus').meta({ restart: true }),
      lcdDevice: z.string().default('').describe("LCD serial device; empty for the board's (none on the sim board, whose device is \"pty\": the screen is then only kept for `mlsd panel screen`)").meta({ restart: true }),
      cycleSeconds: z.number().int().min(1).max(300).default(5).describe('Seconds each status screen shows before the next'),
      menuTimeoutSeconds: z.number().int().min(5).max(3600).default(60).describe('An idle menu goes back to the status screens after this long'),
      debounceMs: z.number().int().min(5).max(500).default(30).describe('A button counts as pressed once its contact has been closed this long'),
      pollSeconds: z.number().int().min(1).max(3600).default(5).describe('How often the panel reads the status for its screens and LEDs'),
    })
    .prefault({})
    .describe('The front panel: LCD, buttons and LEDs'),
  admin: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Serve the web admin (and the user-facing pages) over HTTPS').meta({ restart: true }),
      listen: hostPort.default('0.0.0.0:443').describe('Address and port of the HTTPS server: host:port, [v6]:port; per box (an HA peer keeps its own)').meta({ restart: true }),
      allowIps: z
        .array(ipOrCidr)
        .max(200)
        .default(['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'fe80::/10'])
        .describe('Who may reach the admin pages and /api/ (user-facing paths stay open to all); empty: nobody'),
      sessionMinutes: z.number().min(1).max(1440).default(30).describe('A web admin session idle this long is logged out'),
      lockoutFailures: z.number().int().min(1).max(100).default(5).describe('Failed web logins from one network (an IPv4 address, an IPv6 /64) before it is locked out'),
      lockoutMinutes: z.number().min(0.05).max(1440).default(15).describe('How long a network that failed too many web logins is locked out'),
    })
    .prefault({})
    .describe('The web admin: HTTPS server, who may reach it, sessions and lockout'),
  archive: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Archive accepted and sent mail by archive.rules (legal retention); off: nothing new is archived, what is archived stays'),
      retentionYears: z.number().min(0.001).max(100).default(7).describe('How long archived mail is kept when its rule names no retention'),
      rules: z.array(archiveRule).max(200).default([]).describe('In order, first match wins; no match: spam and viruses are skipped, everything else archived for retentionYears'),
      encrypt: z.boolean().default(true).describe('Encrypt the archive at rest with the key in <config-dir>/archive.key (the standby holds the same key); off: compressed only').meta({ restart: true }),
      batchMax: z.number().int().min(1).max(5000).default(500).describe('Most messages taken into the archive in one synced batch'),
      busyShare: z.number().min(0.01).max(1).default(0.05).describe('While mail is arriving, the share of the time the archive may spend taking it in (it is durable in the intake and catches up when the box is quiet); 1: no limit'),
    })
    .prefault({})
    .describe('The mail archive: rules, retention, tamper-evident store, search'),
  backup: z
    .strictObject({
      targets: z
        .array(backupTarget)
        .max(8)
        .default([])
        .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, { message: 'target names must differ' })
        .describe('Where backups go: an SMB 3 share, an SFTP server or a local folder (`mlsd backup target add`)'),
      schedule: z
        .strictObject({
          enabled: z.boolean().default(true).describe('Back up by itself every day at `at` (to every target); off: only `mlsd backup run`'),
          at: z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'HH:MM, 24-hour, local time').default('02:30').describe('When the nightly backup starts'),
        })
        .prefault({}),
      keep: z
        .strictObject({
          daily: z.number().int().min(1).max(60).default(7).describe('Newest daily generations kept on the target'),
          weekly: z.number().int().min(0).max(52).default(4).describe('Weekly generations kept (the newest of each week)'),
          monthly: z.number().int().min(0).max(120).default(12).describe('Monthly generations kept (the newest of each month)'),
        })
        .prefault({}),
      verifyDays: z.number().int().min(1).max(31).default(7).describe('Each night 1/verifyDays of the backed-up files is read back and checked, so every file is re-read within this many days'),
      restore: z
        .strictObject({
          auto: z.boolean().default(true).describe('A blank data disk where a known one was starts a restore from the newest backup by itself'),
          recentDays: z.number().int().min(1).max(365).default(30).describe('Mail this new (and every INBOX) is restored first'),
          retrySeconds: z.number().min(0.1).max(3600).default(30).describe('A restore whose target cannot be reached tries again after this long (doubling, at most 5 minutes)'),
        })
        .prefault({}),
    })
    .prefault({})
    .describe('Remote backup and restore after a data-disk swap'),
});

export type Config = z.infer<typeof configSchema>;
export type ListenerConfig = z.infer<typeof listenerSchema>;
