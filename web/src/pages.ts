// The pages of the web admin, in the order of the navigation. Each lives in its own module.
import { dashboardPage } from './page-dashboard.js';
import { policyPage } from './page-policy.js';
import { peoplePage } from './page-people.js';
import { outboundPage } from './page-outbound.js';
import { scanningPage } from './page-scanning.js';
import { archivePage } from './page-archive.js';
import { backupPage } from './page-backup.js';
import { boxPage } from './page-box.js';

export interface Page {
  /** Its address: #/id. */
  id: string;
  /** Its name in the navigation, in the current language. */
  title(): string;
  /** Fills `root` with the page; throws NotLoggedIn when the session ended. */
  render(root: HTMLElement): Promise<void>;
}

export const PAGES: Page[] = [dashboardPage, policyPage, peoplePage, outboundPage, scanningPage, archivePage, backupPage, boxPage];
