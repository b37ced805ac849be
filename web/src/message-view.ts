// The safe view of one mail message from the quarantine or the archive, shared by the Scanning
// and Archive pages. The headers come as JSON and are set with textContent (a subject carrying
// <script> is shown as those characters); the body is the box's inert document in a sandboxed
// frame without allow-scripts or allow-same-origin, so even markup the sanitiser missed can
// neither run nor reach the admin's session; remote images stay blocked until the admin asks;
// attachments and the original are offered as downloads only, never rendered.
import { getJson } from './api.js';
import { actionButton, facts, h, say } from './dom.js';
import { fmtBytes, fmtNumber, fmtTime, strings } from './i18n.js';

export type MessageSource = 'quarantine' | 'archive';

interface MessageInfo {
  subject: string;
  from: string;
  to: string;
  cc: string;
  date: string;
  messageId: string;
  remoteImagesBlocked: number;
  bodyTruncated: boolean;
  attachments: { index: number; filename: string; contentType: string; size: number }[];
  size: number;
}

const S = strings({
  en: {
    title: 'Message',
    subject: 'Subject',
    from: 'From',
    to: 'To',
    cc: 'Cc',
    date: 'Date',
    messageId: 'Message-ID',
    size: 'Size',
    noSubject: '(no subject)',
    body: 'Message body',
    truncated: 'The body is too long to show in full; the .eml download has all of it.',
    imagesBlocked: 'Remote images blocked: {n} (loading them tells the sender the message was opened).',
    loadImages: 'Load remote images',
    imagesLoaded: 'Remote images loaded.',
    attachments: 'Attachments (download only, never opened here)',
    noAttachments: 'No attachments.',
    eml: 'Download the original (.eml)',
    close: 'Close',
    failed: 'The message could not be shown: {error}',
  },
  'zh-TW': {
    title: '郵件',
    subject: '主旨',
    from: '寄件者',
    to: '收件者',
    cc: '副本',
    date: '日期',
    messageId: '郵件識別碼',
    size: '大小',
    noSubject: '（無主旨）',
    body: '郵件內文',
    truncated: '內文過長，未完整顯示；下載 .eml 可取得全文。',
    imagesBlocked: '已封鎖 {n} 張遠端圖片（載入後寄件者會得知郵件已被開啟）。',
    loadImages: '載入遠端圖片',
    imagesLoaded: '已載入遠端圖片。',
    attachments: '附件（僅供下載，不在此開啟）',
    noAttachments: '沒有附件。',
    eml: '下載原始郵件（.eml）',
    close: '關閉',
    failed: '無法顯示此郵件：{error}',
  },
});

/** Where a message's routes live: /api/message/<source>/<id>. The id is one path segment. */
export function messageUrl(source: MessageSource, id: string, tail = ''): string {
  return `/api/message/${source}/${encodeURIComponent(id)}${tail}`;
}

/**
 * The view of one message as a wide card, resolved once its headers are on screen (the frame
 * loads its body by itself). `onClose` removes it; a refusal from the box is shown in the card.
 */
export async function messageView(source: MessageSource, id: string, onClose: () => void): Promise<HTMLElement> {
  const card = h('section', { class: 'card wide message-view', 'data-message': id, 'aria-label': S('title') });
  const head = h('div', { class: 'row message-head' }, h('h2', {}, S('title')), h('button', { type: 'button', class: 'secondary close-message', onclick: onClose }, S('close')));
  card.append(head);
  let m: MessageInfo;
  try {
    m = await getJson<MessageInfo>(messageUrl(source, id));
  } catch (err) {
    const status = h('div', {});
    say(status, S('failed', { error: (err as Error).message }), 'error');
    card.append(status);
    return card;
  }
  const subject = h('span', { class: 'message-subject' }, m.subject === '' ? S('noSubject') : m.subject);
  card.append(
    facts([
      [S('subject'), subject],
      [S('from'), m.from],
      [S('to'), m.to],
      ...(m.cc ? ([[S('cc'), m.cc]] as [string, string][]) : []),
      [S('date'), fmtTime(m.date)],
      [S('messageId'), m.messageId],
      [S('size'), fmtBytes(m.size)],
    ]),
  );
  if (m.bodyTruncated) card.append(h('p', { class: 'msg info' }, S('truncated')));

  // sandbox first: the frame must never exist, even for a moment, without it.
  const frame = h('iframe', {
    sandbox: 'allow-popups allow-popups-to-escape-sandbox',
    referrerpolicy: 'no-referrer',
    class: 'message',
    title: S('body'),
    src: messageUrl(source, id, '/body'),
  });
  if (m.remoteImagesBlocked > 0) {
    const status = h('div', { class: 'images-status' });
    say(status, S('imagesBlocked', { n: fmtNumber(m.remoteImagesBlocked) }));
    const load = actionButton(
      S('loadImages'),
      async () => {
        frame.src = messageUrl(source, id, '/body?images=1');
        load.remove();
        say(status, S('imagesLoaded'), 'ok');
      },
      { class: 'secondary load-images' },
    );
    card.append(h('div', { class: 'row' }, load, status));
  }
  card.append(frame);

  card.append(h('h3', {}, S('attachments')));
  card.append(
    m.attachments.length === 0
      ? h('p', { class: 'empty' }, S('noAttachments'))
      : h(
          'ul',
          { class: 'attachments' },
          m.attachments.map((a) =>
            h('li', {}, h('a', { href: messageUrl(source, id, `/part/${a.index}`), download: a.filename, class: 'attachment' }, a.filename), ` (${a.contentType}, ${fmtBytes(a.size)})`),
          ),
        ),
  );
  card.append(h('p', {}, h('a', { href: messageUrl(source, id, '/eml'), download: `${id}.eml`, class: 'eml' }, S('eml'))));
  return card;
}
