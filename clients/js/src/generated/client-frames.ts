/* Generated from specs/client-frames.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */

/**
 * Client → server, routed on `action`.
 */
export type ClientFrame =
  | {
      action: "subscribe";
      channel: string;
      /**
       * Event-type patterns with `*` (one segment) and `**` (any); none means all.
       */
      events?: string[];
      /**
       * An EventBridge content pattern over the event's `data`.
       */
      filter?: {
        [k: string]: unknown | undefined;
      };
      id?: string | null;
      resume?: ResumeFrom | null;
    }
  | {
      action: "unsubscribe";
      channel: string;
      id?: string | null;
    }
  | {
      action: "resume";
      after: number;
      channel: string;
      epoch: string;
      id?: string | null;
    }
  | {
      action: "ping";
      id?: string | null;
    }
  | {
      action: "typing";
      chatId: string;
      id?: string | null;
      isTyping: boolean;
    }
  | {
      action: "presence";
      channel: string;
      id?: string | null;
    };

export interface ResumeFrom {
  after: number;
  epoch: string;
}
