"""advisor: a career-advice chatbot that answers from a curated corpus with cited passages."""
