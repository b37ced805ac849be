// The reply catalogue is defined with the policies that return its entries; the SMTP
// layer uses the same one (see policy/reply.ts for why it lives there).
export { replies, formatReply, type Reply } from '../policy/reply.js';
