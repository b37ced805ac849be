/**
 * The catalogue of every reply mlsd chooses, with its enhanced status code. The SMTP
 * layer writes `${code} ${enhanced} ${text}` on the wire and adds nothing of its own.
 * (It lives under policy/ because policies return these and may import only modules
 * above them; smtp/ re-exports it.)
 */
export interface Reply {
  code: number;
  enhanced: string;
  text: string;
}

const r = (code: number, enhanced: string, text: string): Reply => ({ code, enhanced, text });

export const replies = {
  relayDenied: r(554, '5.7.1', 'Relay access denied'),
  unknownUser: r(550, '5.1.1', 'Recipient address rejected: User unknown in local recipient table'),
  badRecipientSyntax: r(501, '5.1.3', 'Bad recipient address syntax'),
  badSenderSyntax: r(501, '5.1.7', 'Bad sender address syntax'),
  // RFC 6531 3.5: a non-ASCII address in a transaction that did not ask for SMTPUTF8.
  needsSmtpUtf8: r(553, '5.6.7', 'Non-ASCII address not permitted without SMTPUTF8 on MAIL FROM'),
  senderNotOwned: r(553, '5.7.1', 'Sender address rejected: not owned by user'),
  headerFromNotOwned: r(550, '5.7.1', 'From header address rejected: not owned by user'),
  localSenderFromOutside: r(550, '5.7.1', 'Sender address rejected: a local domain sender needs authentication'),
  localHeaderFromOutside: r(550, '5.7.1', 'From header address rejected: a local domain sender needs authentication'),
  authRequired: r(530, '5.7.0', 'Authentication required'),
  loginNoLongerValid: r(421, '4.7.0', 'Error: authentication no longer valid (password changed or account removed), log in again'),
  authFailed: r(535, '5.7.8', 'Error: authentication failed'),
  authNeedsTls: r(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  tooManyRecipients: r(452, '4.5.3', 'Error: too many recipients'),
  messageTooBig: r(552, '5.3.4', 'Error: message exceeds fixed maximum message size'),
  storageFull: r(452, '4.3.1', 'Insufficient system storage'),
  internalError: r(451, '4.3.0', 'Error: internal error, try again later'),
  tooManyConnections: r(421, '4.7.0', 'Error: too many connections from your address, try again later'),
  senderSuspended: r(550, '5.7.1', 'Error: account suspended from sending; contact the administrator'),
  authLocked: r(454, '4.7.0', 'Too many failed logins, try again later'),
  rate: r(450, '4.7.1', 'Error: rate limit exceeded'),
  authTemporaryFailure: r(454, '4.7.0', 'Temporary authentication failure'),
  tooManyErrors: r(421, '4.7.0', 'Error: too many errors, closing connection'),
  virusFound: r(554, '5.7.1', 'Message content rejected: virus or executable content found'),
  haNotInSync: r(451, '4.3.0', 'Error: the standby mail server is not in sync, try again later'),
  scanUnavailable: r(451, '4.7.1', 'Error: content scanning temporarily unavailable, try again later'),
  tooManyHops: r(554, '5.4.6', 'Error: too many hops, mail loop?'),
  forwardingLoop: r(554, '5.4.6', 'Error: mail forwarding loop for'),
  headerTooBig: r(552, '5.3.4', 'Error: message header size exceeds limit'),
  // RFC 5322 3.6: exactly one From. Gmail refuses the same with 550 5.7.1.
  multipleFromFields: r(550, '5.7.1', 'Message rejected: more than one From header field (RFC 5322 3.6)'),
} as const;

export function formatReply(reply: Reply): string {
  return `${reply.code} ${reply.enhanced} ${reply.text}`;
}
