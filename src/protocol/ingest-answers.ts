/** The success bodies of the ingest endpoints (refusals use ErrorBody). */

/** 202 from `POST /webhooks/:source`: stored durably. */
export interface WebhookAccepted {
  status: 'accepted';
  /** The provider's delivery id. */
  id: string;
  subject: string;
  seq: number;
  cursor: string;
}

/** 200 from `POST /webhooks/:source`: already stored (a provider's retry); `seq` when the store still knows it. */
export interface WebhookDuplicate {
  status: 'duplicate';
  id: string;
  seq?: number;
}

/** 200 to Slack's `url_verification`. */
export interface SlackChallenge {
  challenge: unknown;
}

/** One item of the 202 answer of `POST /v1/events`, in the order sent. */
export interface PublishResult {
  id: string;
  seq: number;
  cursor: string;
  duplicate: boolean;
}

export interface PublishAnswer {
  results: PublishResult[];
}
