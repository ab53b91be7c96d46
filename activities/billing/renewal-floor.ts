/** The renewal floor's step (workflows/billing/renewal-floor.ts): nothing, so the floor measures only the shape. */
export const renewalFloorActivities = {
  async renewalFloorStep(): Promise<void> {
    // no work: a renewal's store and provider calls are what the floor leaves out
  },
};
export type RenewalFloorActivities = typeof renewalFloorActivities;
