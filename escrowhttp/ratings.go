package escrowhttp

import (
	"github.com/escrowkit/escrow"
)

// This file serves ratings and reputation.

// reviseBody is the body of revise: the higher score, and a new comment
// (none keeps the old one).
type reviseBody struct {
	Score   escrow.Score `json:"score"`
	Comment string       `json:"comment,omitempty"`
}

// replyBody is the body of reply.
type replyBody struct {
	Text string `json:"text"`
}

// voidBody is the body of void: why the operator voids the rating.
type voidBody struct {
	Reason string `json:"reason"`
}

func (s *server) rate(c *call, in *escrow.RatingInput) (escrow.Rating, error) {
	return s.ledger.Rate(c.ctx, c.r.PathValue("id"), c.actor, *in, c.keyed()...)
}

func (s *server) revise(c *call, b *reviseBody) (escrow.Rating, error) {
	// The ledger's Revise takes the rater as the one who revises: the
	// handler must see that it is the actor.
	if err := s.asRater(c, "revise"); err != nil {
		return escrow.Rating{}, err
	}
	return s.ledger.Revise(c.ctx, c.r.PathValue("id"), c.actor, b.Score, b.Comment, c.keyed()...)
}

func (s *server) reply(c *call, b *replyBody) (escrow.Rating, error) {
	return s.ledger.Reply(c.ctx, c.r.PathValue("id"), c.r.PathValue("rater"), c.actor, b.Text, c.keyed()...)
}

func (s *server) withdrawRating(c *call, _ *empty) (escrow.Rating, error) {
	// As for revise: only the rater withdraws, and the ledger takes the
	// rater as the one who does.
	if err := s.asRater(c, "withdraw"); err != nil {
		return escrow.Rating{}, err
	}
	return s.ledger.WithdrawRating(c.ctx, c.r.PathValue("id"), c.actor, c.keyed()...)
}

// asRater refuses, with not_party, an actor who is not the rater the
// path names and so may not verb the rating. The escrow is read first, so
// that an ID nobody opened is 404 for everyone, as on every other route;
// a stranger learns no more than reading the escrow tells it.
func (s *server) asRater(c *call, verb string) error {
	rater := c.r.PathValue("rater")
	if rater == c.actor {
		return nil
	}
	if _, err := s.ledger.Escrow(c.ctx, c.r.PathValue("id")); err != nil {
		return err
	}
	return refuse("not_party", "only %q, who gave the rating, may %s it, not %q", rater, verb, c.actor)
}

func (s *server) voidRating(c *call, b *voidBody) (escrow.Rating, error) {
	return s.ledger.VoidRating(c.ctx, c.r.PathValue("id"), c.r.PathValue("rater"), c.actor, b.Reason, c.keyed()...)
}

func (s *server) reputation(c *call) (escrow.Reputation, error) {
	return s.ledger.Reputation(c.ctx, c.r.PathValue("party"))
}

func (s *server) concentration(c *call) (escrow.Concentration, error) {
	conc, err := s.ledger.Concentration(c.ctx, c.r.PathValue("party"))
	conc.TopRaters = nonNil(conc.TopRaters)
	return conc, err
}

func (s *server) explain(c *call) (escrow.ContributionPage, error) {
	p, err := c.page()
	if err != nil {
		return escrow.ContributionPage{}, err
	}
	page, err := s.ledger.Explain(c.ctx, c.r.PathValue("party"), p)
	page.Contributions = nonNil(page.Contributions)
	return page, err
}

func (s *server) topSellers(c *call) (escrow.RankedPage, error) {
	by := escrow.RankWilson
	if err := c.queryWord("by", &by); err != nil {
		return escrow.RankedPage{}, err
	}
	p, err := c.page()
	if err != nil {
		return escrow.RankedPage{}, err
	}
	page, err := s.ledger.TopSellers(c.ctx, by, p)
	page.Sellers = nonNil(page.Sellers)
	return page, err
}

// page reads the limit and cursor parameters.
func (c *call) page() (escrow.Page, error) {
	limit, err := c.queryInt("limit", 0, 1, escrow.MaxPageLimit)
	return escrow.Page{Limit: limit, Cursor: c.r.URL.Query().Get("cursor")}, err
}
